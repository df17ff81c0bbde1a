"""The post fact: one row per post folded from every event metrics stored about it. Pure, no I/O.

The fold is a function of the *set* of events, never of their arrival order: events are sorted by when they
happened (``occurred_at`` in the payload, else the envelope time) and then by event id, and "first" facts
take the earliest candidate. Recomputing the fact from all of a post's events after each new event therefore
makes the projection idempotent (a replayed event adds nothing to the set) and tolerant of out-of-order
arrival across topics (a late event lands in its place in the sorted set).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

T_RECEIVED = "switchboard.post.received.v1"
T_SCREENED = "switchboard.post.screened.v1"
T_CREATED = "switchboard.assignment.created.v1"
T_OFFERED = "switchboard.assignment.offered.v1"
T_ACCEPTED = "switchboard.assignment.accepted.v1"
T_DECLINED = "switchboard.assignment.declined.v1"
T_RELEASED = "switchboard.assignment.released.v1"
T_TRANSFERRED = "switchboard.assignment.transferred.v1"
T_ESCALATED = "switchboard.assignment.escalated.v1"
T_AWAITING = "switchboard.assignment.awaiting_public.v1"
T_RESUMED = "switchboard.assignment.resumed.v1"
T_RESOLVED = "switchboard.assignment.resolved.v1"
T_APPROVAL_REQUESTED = "switchboard.reply.approval_requested.v1"
T_APPROVAL_DECIDED = "switchboard.reply.approval_decided.v1"
T_PUBLISHED = "switchboard.reply.published.v1"
T_SLA_WARNING = "switchboard.sla.warning.v1"
T_SLA_BREACHED = "switchboard.sla.breached.v1"

MAX_LABELS = 50
MAX_HASHTAGS = 20


@dataclass(frozen=True)
class EventRecord:
    """What the fold needs of one stored event."""

    event_id: str
    type: str
    time: datetime
    attributes: Mapping[str, Any]

    @property
    def occurred_at(self) -> datetime:
        value = self.attributes.get("occurred_at")
        return parse_time(value) if value else self.time


@dataclass
class PostFacts:
    post_id: str
    platform: str | None = None
    priority: int | None = None
    department: str | None = None
    queue: str | None = None
    responder_id: str | None = None
    status: str | None = None
    waiting_since: datetime | None = None
    received_at: datetime | None = None
    screened_at: datetime | None = None
    assigned_at: datetime | None = None
    accepted_at: datetime | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    assign_seconds: float | None = None
    first_response_seconds: float | None = None
    resolve_seconds: float | None = None
    assign_business_seconds: float | None = None
    first_response_business_seconds: float | None = None
    resolve_business_seconds: float | None = None
    first_response_due_at: datetime | None = None
    resolve_due_at: datetime | None = None
    warned_first_response: bool = False
    warned_resolve: bool = False
    breached_first_response: bool = False
    breached_resolve: bool = False
    sla_met: bool | None = None
    at_risk: bool = False
    transfers: int = 0
    escalations: int = 0
    declines: int = 0
    releases: int = 0
    approvals_requested: int = 0
    approvals_rejected: int = 0
    replies: int = 0
    labels: list[str] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        """The values of the ``post_fact`` row (labels, hashtags and departments live elsewhere)."""
        values = dict(self.__dict__)
        for name in ("labels", "hashtags", "departments"):
            values.pop(name)
        return values


def parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    # A producer's clock a little behind another's must not yield a negative duration.
    return max(0.0, (end - start).total_seconds())


def _business(attrs: Mapping[str, Any]) -> float | None:
    value = attrs.get("business_seconds_since_received")
    return float(value) if value is not None else None


def _waiting_state(status: str, responder: Any) -> str:
    return status if responder else "waiting"


def fold(post_id: str, events: Iterable[EventRecord]) -> PostFacts:
    """Fold every stored event of one post into its facts."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.event_id))
    f = PostFacts(post_id=post_id)
    labels: set[str] = set()
    hashtags: set[str] = set()
    departments: set[str] = set()
    post_received_at: datetime | None = None
    # Priority and platform as the post arrived (ingest, policy) win over routing's copy of them, whatever
    # the order the events sort in when they share a timestamp.
    arrival_priority: int | None = None
    arrival_platform: str | None = None

    for e in ordered:
        a = e.attributes
        at = e.occurred_at
        if e.type == T_RECEIVED:
            f.received_at = f.received_at or parse_time(a.get("received_at") or e.time)
            arrival_platform = arrival_platform or a.get("platform")
            hashtags.update(a.get("hashtags") or ())
            continue
        if e.type == T_SCREENED:
            f.screened_at = f.screened_at or parse_time(a.get("screened_at") or e.time)
            arrival_platform = arrival_platform or a.get("platform")
            if arrival_priority is None and a.get("priority") is not None:
                arrival_priority = int(a["priority"])
            labels.update(a.get("labels") or ())
            continue
        if "department" not in a:
            continue  # not an assignment-family event (tolerant reader: unknown types are skipped)

        # Every assignment-family event carries the owner at that moment: the latest one is the current owner.
        f.department, f.queue, f.responder_id = a.get("department"), a.get("queue"), a.get("responder_id")
        departments.add(str(a["department"]))
        if a.get("post_received_at") and post_received_at is None:
            post_received_at = parse_time(a["post_received_at"])

        if e.type == T_CREATED:
            f.assigned_at = f.assigned_at or at
            if f.priority is None and a.get("priority") is not None:
                f.priority = int(a["priority"])
            f.platform = f.platform or a.get("platform")
            labels.update(a.get("labels") or ())
            if a.get("first_response_due_at"):
                f.first_response_due_at = parse_time(a["first_response_due_at"])
            if a.get("resolve_due_at"):
                f.resolve_due_at = parse_time(a["resolve_due_at"])
            f.status = str(a.get("status") or "waiting")
            f.waiting_since = at if f.status == "waiting" else None
        elif e.type == T_OFFERED:
            f.status = "offered"
        elif e.type == T_ACCEPTED:
            if f.accepted_at is None:
                f.accepted_at = at
                f.assign_business_seconds = _business(a)
            f.status, f.waiting_since = "assigned", None
        elif e.type in (T_DECLINED, T_RELEASED):
            if e.type == T_DECLINED:
                f.declines += 1
            else:
                f.releases += 1
            f.status, f.waiting_since = "waiting", at
        elif e.type in (T_TRANSFERRED, T_RESUMED):
            f.transfers += e.type == T_TRANSFERRED
            f.status = _waiting_state("assigned", a.get("responder_id"))
            f.waiting_since = at if f.status == "waiting" else None
        elif e.type == T_ESCALATED:
            f.escalations += 1
        elif e.type == T_AWAITING:
            f.status, f.waiting_since = "awaiting_public", None
        elif e.type == T_RESOLVED:
            if f.resolved_at is None:
                f.resolved_at = at
                f.resolve_business_seconds = _business(a)
            f.status, f.waiting_since = "resolved", None
        elif e.type == T_APPROVAL_REQUESTED:
            f.approvals_requested += 1
        elif e.type == T_APPROVAL_DECIDED:
            f.approvals_rejected += a.get("decision") == "rejected"
        elif e.type == T_PUBLISHED:
            f.replies += 1
            if a.get("first_response") and f.first_response_at is None:
                f.first_response_at = at
                f.first_response_business_seconds = _business(a)
        elif e.type in (T_SLA_WARNING, T_SLA_BREACHED):
            target = a.get("target")
            due = parse_time(a["due_at"]) if a.get("due_at") else None
            warned_or_breached = "breached" if e.type == T_SLA_BREACHED else "warned"
            if target == "first_response":
                f.first_response_due_at = due or f.first_response_due_at
                setattr(f, f"{warned_or_breached}_first_response", True)
            elif target == "resolve":
                f.resolve_due_at = due or f.resolve_due_at
                setattr(f, f"{warned_or_breached}_resolve", True)

    # The received event may be missing (or not yet arrived): the lifecycle events carry its time.
    f.received_at = f.received_at or post_received_at
    f.priority = arrival_priority if arrival_priority is not None else f.priority
    f.platform = arrival_platform or f.platform
    f.assign_seconds = _seconds(f.received_at, f.accepted_at)
    f.first_response_seconds = _seconds(f.received_at, f.first_response_at)
    f.resolve_seconds = _seconds(f.received_at, f.resolved_at)
    f.sla_met = sla_met(
        due_at=f.first_response_due_at,
        answered_at=f.first_response_at,
        breached=f.breached_first_response,
    )
    f.at_risk = f.status not in (None, "resolved") and (
        ((f.warned_first_response or f.breached_first_response) and f.first_response_at is None)
        or ((f.warned_resolve or f.breached_resolve) and f.resolved_at is None)
    )
    f.labels = sorted(labels)[:MAX_LABELS]
    f.hashtags = sorted(hashtags)[:MAX_HASHTAGS]
    f.departments = sorted(departments)
    return f


def sla_met(*, due_at: datetime | None, answered_at: datetime | None, breached: bool) -> bool | None:
    """Whether the first-response target was met: None while it cannot be known yet (or has no target)."""
    if due_at is None:
        return None
    if breached:
        return False
    if answered_at is None:
        return None
    return answered_at <= due_at
