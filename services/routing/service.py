"""Routing's domain orchestration: route screened posts, drain queues, run the assignment lifecycle, fire
offer and SLA timers, record replies. Decisions are delegated to the pure modules (rules, decisions, sla);
this module loads state through the repositories, applies the decisions and returns the events to emit.

It only flushes: the caller (event-handler wrapper, request dependency or timer loop) owns the transaction,
so a state change and its events commit together or not at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing import decisions, rules, sla
from services.routing.models import (
    Approval,
    Assignment,
    Department,
    NewAssignment,
    Reply,
    Responder,
)
from services.routing.repository import (
    ApprovalRepository,
    AssignmentRepository,
    DecisionRepository,
    DepartmentRepository,
    PostContextRepository,
    QueueRepository,
    ReplyRepository,
    ResponderRepository,
    RuleSetRepository,
    SlaPolicyRepository,
)
from shared.auth import Principal, Role
from shared.contracts import PostReceivedV1, PostScreenedV1, new_event
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    AssignmentAcceptedV1,
    AssignmentAwaitingPublicV1,
    AssignmentCreatedV1,
    AssignmentDeclinedV1,
    AssignmentEscalatedV1,
    AssignmentOfferedV1,
    AssignmentReleasedV1,
    AssignmentResolvedV1,
    AssignmentResumedV1,
    AssignmentTransferredV1,
    ReplyApprovalDecidedV1,
    ReplyApprovalRequestedV1,
    ReplyPublishedV1,
    SlaBreachedV1,
    SlaWarningV1,
    _AssignmentEvent,
)
from shared.errors import Conflict, NotFound, ServiceError
from shared.ids import uuid7

SOURCE = "/switchboard/routing"
OPEN = frozenset({"waiting", "offered", "assigned", "awaiting_public"})
Events = list[Envelope[Any]]
#: A stored assignment, or one routed in this batch whose row is inserted after the batch's drain.
AnyAssignment = Assignment | NewAssignment
E = TypeVar("E", bound=_AssignmentEvent)


@dataclass(frozen=True)
class RoutingConfig:
    default_department: str
    crisis_department: str
    offer_timeout_seconds: int = 120
    drain_batch_size: int = 200
    timer_batch_size: int = 500
    #: Compiled rule sets by version, for this app's database only (versions are immutable once stored).
    rulesets: dict[str, rules.RuleSet] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def crisis_target(self) -> rules.Target:
        d = self.crisis_department
        return rules.Target(d, f"{d}.crisis", 1, frozenset(), "crisis")


@dataclass(frozen=True)
class PolicyDefaults:
    clock: str
    first_response_seconds: int
    resolve_seconds: int
    warning_fraction: float
    breach_action: str


#: Used when no SLA policy of that name is in the directory: one business day (8.5 h) to first response,
#: a business week to resolve (policy-checks.md 3.1); crisis in minutes on a 24/7 wall clock.
BUILTIN_POLICIES = {
    "standard": PolicyDefaults("business", int(8.5 * 3600), int(5 * 8.5 * 3600), 0.75, "raise_priority"),
    "crisis": PolicyDefaults("wall", 15 * 60, 4 * 3600, 0.5, "reassign_supervisors"),
}


class InvalidTransition(Conflict):
    title = "Invalid assignment transition"


# --- calendars and rule sets: compiled once, cached by their content ---


@lru_cache(maxsize=512)
def _calendar(tz: str, hours_key: str, state: str | None, closures: tuple[str, ...]) -> sla.Calendar:
    import json

    return sla.Calendar(
        ZoneInfo(tz),
        sla.parse_hours(json.loads(hours_key)),
        state,
        frozenset(date.fromisoformat(d) for d in closures),
    )


def calendar_of(dept: Department | None) -> sla.Calendar | None:
    if dept is None:
        return None
    import json

    return _calendar(dept.timezone, json.dumps(dept.hours, sort_keys=True), dept.state, tuple(dept.closures))


_CACHE_KEY = "routing.directory_cache"


def _cache(session: AsyncSession) -> dict[Any, Any]:
    """Directory rows read in this transaction. A consumer batch routes hundreds of posts to a handful of
    departments: reading each department, queue, policy and the rule-set version once per batch (one
    transaction) instead of once per post. Directory edits show up from the next transaction on."""
    cache: dict[Any, Any] = session.info.setdefault(_CACHE_KEY, {})
    return cache


async def _department(session: AsyncSession, department_id: str) -> Department | None:
    cache = _cache(session)
    key = ("department", department_id)
    if key not in cache:
        cache[key] = await DepartmentRepository(session).get(department_id)
    row: Department | None = cache[key]
    return row


async def active_ruleset(session: AsyncSession, config: RoutingConfig) -> rules.RuleSet:
    """The active rule set, compiled once per version (a version is immutable once stored)."""
    repo = RuleSetRepository(session)
    cache = _cache(session)
    if "ruleset_version" not in cache:
        cache["ruleset_version"] = await repo.active_version()
    version: int | None = cache["ruleset_version"]
    key = str(version or "builtin-0")
    cached = config.rulesets.get(key)
    if cached is not None:
        return cached
    row = await repo.get(version) if version is not None else None
    if row is None:
        compiled = rules.compile_ruleset(
            version="builtin-0",
            rules=[],
            default={"department": config.default_department},
            crisis=config.crisis_target,
        )
    else:
        compiled = rules.compile_ruleset(
            version=str(row.version), rules=row.rules, default=row.default, crisis=config.crisis_target
        )
    if len(config.rulesets) > 64:
        config.rulesets.clear()
    config.rulesets[key] = compiled
    return compiled


# --- events ---


def _event(
    cls: type[E], a: AnyAssignment, *, now: datetime, calendar: sla.Calendar | None, **extra: Any
) -> Envelope[E]:
    business = None
    if a.post_received_at is not None:
        cal = calendar if a.sla_clock == "business" else None
        business = sla.business_seconds_between(cal, a.post_received_at, now)
    data = cls(
        post_id=a.post_id,
        assignment_id=a.id,
        department=a.department,
        queue=a.queue,
        responder_id=a.responder_id,
        priority=a.priority,
        post_received_at=a.post_received_at,
        occurred_at=now,
        business_seconds_since_received=business,
        **extra,
    )
    return new_event(data, source=SOURCE, time=now)


def _decision(
    session: AsyncSession, a: AnyAssignment, kind: str, explanation: dict[str, Any], now: datetime
) -> None:
    DecisionRepository(session).add_at_commit(
        id=str(uuid7()), assignment_id=a.id, kind=kind, explanation=explanation, created_at=now
    )


async def _calendars(session: AsyncSession, departments: Iterable[str]) -> dict[str, sla.Calendar | None]:
    return {d: calendar_of(await _department(session, d)) for d in set(departments)}


# --- SLA clocks on an assignment ---


def _target(a: AnyAssignment, prefix: str) -> sla.Target:
    return sla.Target(
        getattr(a, f"{prefix}_total"), getattr(a, f"{prefix}_consumed"), getattr(a, f"{prefix}_running_since")
    )


def _store(
    a: AnyAssignment, prefix: str, t: sla.Target, calendar: sla.Calendar | None, now: datetime
) -> None:
    setattr(a, f"{prefix}_consumed", t.consumed_seconds)
    setattr(a, f"{prefix}_running_since", t.running_since)
    cal = calendar if a.sla_clock == "business" else None
    d = sla.deadline(calendar=cal, target=t, warning_fraction=a.warning_fraction, now=now)
    setattr(a, f"{prefix}_due_at", None if d is None else d.due_at)
    setattr(a, f"{prefix}_warn_at", None if d is None else d.warn_at)


def _clock_targets(a: Assignment) -> list[str]:
    return ["rs"] if a.fr_met_at is not None else ["fr", "rs"]


def pause_clocks(
    a: Assignment, calendar: sla.Calendar | None, now: datetime, *, targets: Collection[str] = ("fr", "rs")
) -> None:
    cal = calendar if a.sla_clock == "business" else None
    for p in targets:
        _store(a, p, sla.pause(calendar=cal, target=_target(a, p), now=now), calendar, now)


def resume_clocks(a: Assignment, calendar: sla.Calendar | None, now: datetime) -> None:
    for p in _clock_targets(a):
        _store(a, p, sla.resume(target=_target(a, p), now=now), calendar, now)


# --- routing a screened post ---


async def record_posts_received(*, session: AsyncSession, posts: Sequence[PostReceivedV1]) -> None:
    """Keep each post's receipt time and thread id (SLA clocks start at receipt; continuity follows the
    thread): one read and one Core executemany for a whole consumer batch."""
    repo = PostContextRepository(session)
    known = await repo.existing({p.post_id for p in posts})
    rows: list[dict[str, Any]] = []
    for post in posts:
        if post.post_id in known:
            continue
        known.add(post.post_id)
        rows.append(
            {
                "post_id": post.post_id,
                "received_at": post.received_at,
                "conversation_id": post.conversation_id,
            }
        )
    await repo.insert_many(rows)


async def record_post_received(*, session: AsyncSession, post: PostReceivedV1) -> None:
    await record_posts_received(session=session, posts=[post])


async def assign_post(
    *, session: AsyncSession, post: PostScreenedV1, config: RoutingConfig, now: datetime
) -> Events:
    """Route one screened post. Idempotent: a post that already has an assignment yields no events."""
    return (await assign_posts(session=session, posts=[post], config=config, now=now))[0]


@dataclass
class _Routed:
    """A post routed in this batch whose assignment.created waits for the batch's queue drain."""

    assignment: NewAssignment
    post: PostScreenedV1
    calendar: sla.Calendar | None
    policy_name: str


async def assign_posts(
    *, session: AsyncSession, posts: Sequence[PostScreenedV1], config: RoutingConfig, now: datetime
) -> list[Events]:
    """Route a batch of screened posts (a consumer batch, one transaction); the events of each post, in order.

    Idempotent: a post that already has an assignment (or appears twice) yields no events. The state is read
    in bulk (existing assignments, receipts, assignments awaiting the public's answer: one query each), the
    departments' queues are drained once for the whole batch, not once per post, and the new assignments are
    inserted after that drain, with their final status, as one Core executemany. Each routed post's
    ``assignment.created`` (with its status after the drain) comes before the drain's offers, so a post's
    events keep their order.
    """
    repo = AssignmentRepository(session)
    ids = {p.post_id for p in posts} | {p.duplicate_of for p in posts if p.duplicate_of}
    by_post: dict[str, AnyAssignment] = dict(await repo.by_post_ids(ids))
    contexts = await PostContextRepository(session).get_many({p.post_id for p in posts})
    authors = {p.author_ref for p in posts}
    conversations = {c.conversation_id for c in contexts.values() if c.conversation_id}
    awaiting = list(await repo.awaiting_public_among(authors, conversations))
    out: list[Events] = []
    routed: list[_Routed] = []
    for post in posts:
        if post.post_id in by_post:
            out.append([])
            continue
        context = contexts.get(post.post_id)
        received_at = context.received_at if context is not None else post.screened_at
        conversation = context.conversation_id if context is not None else None
        facts = rules.PostFacts.from_screened(post)

        if post.duplicate_of:
            parent = by_post.get(post.duplicate_of)
            while parent is not None and parent.status == "grouped" and parent.grouped_with:
                parent = await repo.get(parent.grouped_with)
            if parent is not None and parent.status in OPEN:
                events = await _group(session, post, parent, facts, received_at, conversation, now)
                by_post[post.post_id] = parent  # a duplicate of this post joins the same work
                out.append(events)
                continue

        waiting_on_public = _awaiting_public(awaiting, author_ref=post.author_ref, conversation=conversation)
        if waiting_on_public is not None:
            # The public answered: the clocks run again and the answer joins the work it belongs to.
            awaiting.remove(waiting_on_public)
            cal = (await _calendars(session, [waiting_on_public.department]))[waiting_on_public.department]
            resume_clocks(waiting_on_public, cal, now)
            waiting_on_public.status, waiting_on_public.updated_at = "assigned", now
            _decision(session, waiting_on_public, "resumed", {"by_post": post.post_id}, now)
            resumed = _event(AssignmentResumedV1, waiting_on_public, now=now, calendar=cal)
            grouped = await _group(session, post, waiting_on_public, facts, received_at, conversation, now)
            by_post[post.post_id] = waiting_on_public
            out.append([resumed, *grouped])
            continue

        r = await _route(session, post, facts, received_at, conversation, config, now)
        by_post[post.post_id] = r.assignment
        routed.append(r)
        out.append([])  # filled after the drain
    if not routed:
        return out
    # The routed posts' rows do not exist yet: the drain takes them from ``explain`` (it reads only older
    # waiting posts from the table), may offer them, and then they are inserted with their final values.
    drained = await drain(
        session=session,
        departments={r.assignment.department for r in routed},
        config=config,
        now=now,
        explain=[r.assignment for r in routed],
    )
    await repo.insert_new([r.assignment for r in routed])
    created: dict[str, Envelope[Any]] = {}
    for r in routed:
        a = r.assignment
        created[a.post_id] = _event(
            AssignmentCreatedV1,
            a,
            now=now,
            calendar=r.calendar,
            status="offered" if a.status == "offered" else "waiting",
            rule_id=a.rule_id,
            ruleset_version=a.ruleset_version,
            labels=list(r.post.labels),
            platform=r.post.platform,
            sla_policy=r.policy_name,
            first_response_due_at=a.fr_due_at,
            resolve_due_at=a.rs_due_at,
        )
    # Offers go with the post they offer when it is in this batch (after its assignment.created), else
    # with the first post routed (offers of older waiting posts the new capacity reached).
    index = {p.post_id: i for i, p in enumerate(posts)}
    first = index[routed[0].assignment.post_id]
    for r in routed:
        out[index[r.assignment.post_id]].append(created[r.assignment.post_id])
    for event in drained:
        out[index.get(event.data.post_id, first)].append(event)
    return out


def _awaiting_public(
    awaiting: Sequence[Assignment], *, author_ref: str, conversation: str | None
) -> Assignment | None:
    """The assignment waiting for this author's answer: same conversation when known, else same author."""
    if conversation is not None:
        found = [a for a in awaiting if a.conversation_id == conversation]
    else:
        found = [a for a in awaiting if a.author_ref == author_ref]
    return max(found, key=lambda a: a.created_at) if found else None


async def _route(
    session: AsyncSession,
    post: PostScreenedV1,
    facts: rules.PostFacts,
    received_at: datetime,
    conversation: str | None,
    config: RoutingConfig,
    now: datetime,
) -> _Routed:
    """Evaluate the rules and make the post's waiting assignment (not inserted, not yet drained)."""
    ruleset = await active_ruleset(session, config)
    match = ruleset.evaluate(facts)
    target = match.target
    dept = await _department(session, target.department)
    cache = _cache(session)
    if ("queue", target.queue) not in cache:
        cache[("queue", target.queue)] = await QueueRepository(session).get(target.queue)
    queue = cache[("queue", target.queue)]
    queue_skills = frozenset(queue.required_skills) if queue is not None else frozenset()
    policy_name = target.sla_policy or (dept.sla_policy if dept is not None else None) or "standard"
    policy = await _policy(session, policy_name)
    crisis = match.rule_id == "builtin.crisis"
    calendar = calendar_of(dept)
    clock = "wall" if crisis or policy.clock == "wall" or calendar is None else "business"
    a = NewAssignment(
        id=str(uuid7()),
        post_id=post.post_id,
        department=target.department,
        queue=target.queue,
        responder_id=None,
        priority=match.priority,
        status="waiting",
        rule_id=match.rule_id,
        ruleset_version=match.ruleset_version,
        created_at=now,
        platform=str(post.platform),
        visibility=post.visibility,
        author_ref=post.author_ref,
        conversation_id=conversation,
        language=facts.language,
        labels=list(post.labels)[:200],
        required_skills=sorted(target.required_skills | queue_skills),
        declined_by=[],
        grouped_with=None,
        post_received_at=received_at,
        waiting_since=now,
        offer_expires_at=None,
        outcome=None,
        resolved_at=None,
        sla_policy=policy_name,
        sla_clock=clock,
        warning_fraction=policy.warning_fraction,
        breach_action=policy.breach_action,
        fr_total=float(policy.first_response_seconds),
        fr_consumed=0.0,
        fr_running_since=None,
        fr_met_at=None,
        fr_due_at=None,
        fr_warn_at=None,
        fr_warned=False,
        fr_breached=False,
        rs_total=float(policy.resolve_seconds),
        rs_consumed=0.0,
        rs_running_since=None,
        rs_due_at=None,
        rs_warn_at=None,
        rs_warned=False,
        rs_breached=False,
        updated_at=now,
    )
    # Both clocks start when the post reached us, not when it reached routing.
    for p in ("fr", "rs"):
        _store(a, p, sla.Target(getattr(a, f"{p}_total"), 0.0, received_at), calendar, now)
    explanation = {
        "rule": match.explain(),
        "sla": {"policy": policy_name, "clock": clock, "calendar": dept is not None},
        "queue_required_skills": sorted(queue_skills),
    }
    _decision(session, a, "routed", explanation, now)
    return _Routed(a, post, calendar, policy_name)


async def _group(
    session: AsyncSession,
    post: PostScreenedV1,
    parent: AnyAssignment,
    facts: rules.PostFacts,
    received_at: datetime,
    conversation: str | None,
    now: datetime,
) -> Events:
    """A near-duplicate joins the open assignment of its original instead of taking a responder."""
    a = Assignment(
        id=str(uuid7()),
        post_id=post.post_id,
        department=parent.department,
        queue=parent.queue,
        responder_id=parent.responder_id,
        priority=parent.priority,
        status="grouped",
        rule_id="grouped",
        ruleset_version=parent.ruleset_version,
        created_at=now,
        platform=str(post.platform),
        visibility=post.visibility,
        author_ref=post.author_ref,
        conversation_id=conversation,
        language=facts.language,
        labels=list(post.labels)[:200],
        required_skills=[],
        declined_by=[],
        grouped_with=parent.id,
        post_received_at=received_at,
        sla_policy=parent.sla_policy,
        sla_clock=parent.sla_clock,
        updated_at=now,
    )
    await AssignmentRepository(session).add(a)
    _decision(session, a, "grouped", {"duplicate_of": post.duplicate_of, "joined_assignment": parent.id}, now)
    status = {"waiting": "waiting", "offered": "offered"}.get(parent.status, "assigned")
    cal = (await _calendars(session, [a.department]))[a.department]
    return [
        _event(
            AssignmentCreatedV1,
            a,
            now=now,
            calendar=cal,
            status=status,
            rule_id=a.rule_id,
            ruleset_version=a.ruleset_version,
            labels=list(post.labels),
            platform=post.platform,
            sla_policy=parent.sla_policy,
            grouped_with=parent.id,
        )
    ]


async def _policy(session: AsyncSession, name: str) -> PolicyDefaults:
    cache = _cache(session)
    if ("policy", name) not in cache:
        cache[("policy", name)] = await SlaPolicyRepository(session).get(name)
    row = cache[("policy", name)]
    if row is not None:
        return PolicyDefaults(
            row.clock,
            row.first_response_seconds,
            row.resolve_seconds,
            row.warning_fraction,
            row.breach_action,
        )
    return BUILTIN_POLICIES.get(name, BUILTIN_POLICIES["standard"])


# --- draining queues ---


async def candidates_for(
    session: AsyncSession, departments: Collection[str], *, lock: bool
) -> tuple[list[decisions.Candidate], dict[str, Responder]]:
    rrepo = ResponderRepository(session)
    responders = list(await rrepo.in_departments(departments))
    ids = [r.id for r in responders]
    # SQLite's single writer already serialises drains (and ignores FOR UPDATE): skip the round trip there.
    if lock and session.get_bind().dialect.name != "sqlite":
        locked = await rrepo.lock_available(ids)
    else:
        locked = {r.id for r in responders}
    depts = await rrepo.departments_of(ids)
    loads = await rrepo.loads(ids)
    out = []
    for r in responders:
        status = r.status
        if status == "available" and r.id not in locked:
            status = "busy_in_another_drain"
        out.append(
            decisions.Candidate(
                id=r.id,
                status=status,
                departments=frozenset(depts[r.id]),
                skills=frozenset(r.skills),
                languages=frozenset(r.languages),
                capacity=r.capacity,
                load=loads.get(r.id, 0),
                idle_since=r.idle_since,
            )
        )
    return out, {r.id: r for r in responders}


def need_of(a: AnyAssignment, continuity: dict[str, set[str]]) -> decisions.Need:
    preferred = set(continuity.get(a.author_ref, ()))
    if a.conversation_id:
        preferred |= continuity.get(a.conversation_id, set())
    return decisions.Need(
        department=a.department,
        required_skills=frozenset(a.required_skills),
        language=a.language,
        preferred=frozenset(preferred),
        excluded=frozenset(a.declined_by),
    )


async def drain(
    *,
    session: AsyncSession,
    departments: Collection[str],
    config: RoutingConfig,
    now: datetime,
    explain: Sequence[AnyAssignment] = (),
) -> Events:
    """Offer the departments' waiting posts, in priority-then-age order, to whoever has spare capacity.

    Called whenever capacity may have appeared: new posts (once per consumer batch), a responder becoming
    available, a decline, an expired offer, a release, a transfer, a resolve. ``explain``: assignments whose
    'still waiting' outcome should be stored with the reasons (the posts just routed).
    """
    repo = AssignmentRepository(session)
    depts = set(departments)
    candidates, responders = await candidates_for(session, depts, lock=True)
    spare = any(c.status == "available" and c.load < c.capacity for c in candidates)
    # Under load every responder is usually full: then the queue cannot move and reading its head is waste.
    waiting: list[AnyAssignment] = (
        list(await repo.lock_waiting(depts, limit=config.drain_batch_size)) if spare else []
    )
    listed = {w.id for w in waiting}
    waiting += [a for a in explain if a.id not in listed]
    if not waiting:
        return []
    continuity = await repo.continuity(
        {w.author_ref for w in waiting if w.author_ref},
        {w.conversation_id for w in waiting if w.conversation_id},
    )
    by_id = {w.id: w for w in waiting}
    needs = {w.id: need_of(w, continuity) for w in waiting}
    plan = (
        decisions.plan_drain(
            waiting=[
                decisions.Waiting(w.id, w.priority, w.waiting_since or w.created_at, needs[w.id])
                for w in waiting
            ],
            candidates=candidates,
            now=now,
        )
        if spare
        else []
    )
    calendars = await _calendars(session, depts)
    events: Events = []
    for position, (item, choice) in enumerate(plan):
        a = by_id[item.assignment_id]
        assert choice.responder_id is not None  # noqa: S101 - plan_drain only returns choices with a responder
        a.status = "offered"
        a.responder_id = choice.responder_id
        a.offer_expires_at = now + timedelta(seconds=config.offer_timeout_seconds)
        a.updated_at = now
        responders[choice.responder_id].idle_since = now
        _decision(session, a, "offered", {**choice.explain(), "drain_position": position}, now)
        events.append(
            _event(
                AssignmentOfferedV1,
                a,
                now=now,
                calendar=calendars.get(a.department),
                offer_expires_at=a.offer_expires_at,
            )
        )
    still_waiting = [a for a in explain if a.status == "waiting"]
    if still_waiting:
        offered = Counter(c.responder_id for _, c in plan)
        after = [replace(c, load=c.load + offered[c.id]) for c in candidates]
        for a in still_waiting:
            choice = decisions.choose(need=needs[a.id], candidates=after)
            reason = choice.reason if choice.responder_id is None else "older_or_more_urgent_posts_first"
            _decision(session, a, "queued", {**choice.explain(), "reason": reason}, now)
    await session.flush()
    return events


# --- the responder workflow ---


async def _load(session: AsyncSession, assignment_id: str, actor: Principal) -> Assignment:
    a = await AssignmentRepository(session).get_for_update(assignment_id)
    # Another department's assignment is reported as absent, not forbidden: no existence oracle.
    if a is None or not actor.can_see_department(a.department):
        raise NotFound(f"No assignment with id {assignment_id!r}.")
    return a


def _is_supervisor(actor: Principal) -> bool:
    return actor.has_any({Role.SUPERVISOR, Role.ADMIN})


def _require(a: Assignment, statuses: Collection[str], action: str) -> None:
    if a.status not in statuses:
        raise InvalidTransition(
            f"Cannot {action} an assignment that is {a.status}; it must be {' or '.join(sorted(statuses))}."
        )


def _require_owner(a: Assignment, actor: Principal, action: str, *, supervisor_ok: bool = False) -> None:
    if a.responder_id != actor.subject and not (supervisor_ok and _is_supervisor(actor)):
        raise ServiceError(f"Only the responder holding this assignment may {action} it.", status_code=403)


async def accept(
    *, session: AsyncSession, assignment_id: str, actor: Principal, now: datetime
) -> tuple[Assignment, Events]:
    a = await _load(session, assignment_id, actor)
    _require(a, {"offered"}, "accept")
    _require_owner(a, actor, "accept")
    if a.offer_expires_at is not None and a.offer_expires_at <= now:
        raise InvalidTransition("The offer has expired; it goes to the next responder.")
    a.status, a.offer_expires_at, a.updated_at = "assigned", None, now
    _decision(session, a, "accepted", {"responder_id": actor.subject}, now)
    cal = (await _calendars(session, [a.department]))[a.department]
    await session.flush()
    return a, [_event(AssignmentAcceptedV1, a, now=now, calendar=cal)]


async def _back_to_queue(a: Assignment, *, declined: str | None) -> None:
    if declined and declined not in a.declined_by:
        a.declined_by = [*a.declined_by, declined][-100:]
    a.status, a.responder_id, a.offer_expires_at = "waiting", None, None


async def decline(
    *, session: AsyncSession, assignment_id: str, actor: Principal, config: RoutingConfig, now: datetime
) -> tuple[Assignment, Events]:
    a = await _load(session, assignment_id, actor)
    _require(a, {"offered"}, "decline")
    _require_owner(a, actor, "decline")
    cal = (await _calendars(session, [a.department]))[a.department]
    declined = _event(AssignmentDeclinedV1, a, now=now, calendar=cal, reason="declined")
    await _back_to_queue(a, declined=actor.subject)
    a.updated_at = now
    _decision(session, a, "declined", {"responder_id": actor.subject, "reason": "declined"}, now)
    await session.flush()
    return a, [declined, *await drain(session=session, departments=[a.department], config=config, now=now)]


async def release(
    *,
    session: AsyncSession,
    assignment_id: str,
    actor: Principal,
    reason: str,
    config: RoutingConfig,
    now: datetime,
) -> tuple[Assignment, Events]:
    a = await _load(session, assignment_id, actor)
    _require(a, {"assigned", "awaiting_public"}, "release")
    _require_owner(a, actor, "release", supervisor_ok=True)
    cal = (await _calendars(session, [a.department]))[a.department]
    events: Events = []
    if a.status == "awaiting_public":
        resume_clocks(a, cal, now)
    events.append(_event(AssignmentReleasedV1, a, now=now, calendar=cal, reason=reason))
    previous = a.responder_id
    await _back_to_queue(a, declined=previous)  # not straight back to the one who gave it up
    a.updated_at = now
    _decision(session, a, "released", {"responder_id": previous, "reason": reason}, now)
    await session.flush()
    return a, [*events, *await drain(session=session, departments=[a.department], config=config, now=now)]


async def transfer(
    *,
    session: AsyncSession,
    assignment_id: str,
    actor: Principal,
    department: str | None,
    responder_id: str | None,
    reason: str,
    config: RoutingConfig,
    now: datetime,
) -> tuple[Assignment, Events]:
    a = await _load(session, assignment_id, actor)
    _require(a, {"waiting", "offered", "assigned", "awaiting_public"}, "transfer")
    if a.status != "waiting":
        _require_owner(a, actor, "transfer", supervisor_ok=True)
    elif not _is_supervisor(actor):
        raise ServiceError("Only a supervisor may transfer a waiting post.", status_code=403)
    from_department, from_responder = a.department, a.responder_id
    old_cal = (await _calendars(session, [a.department]))[a.department]
    if a.status == "awaiting_public":
        resume_clocks(a, old_cal, now)
    if department is not None and department != a.department:
        dept = await DepartmentRepository(session).get(department)
        if dept is None:
            raise NotFound(f"No department with id {department!r}.")
        queue = await QueueRepository(session).get(f"{department}.default")
        pause_clocks(a, old_cal, now, targets=_clock_targets(a))
        a.department, a.queue = department, f"{department}.default"
        a.required_skills = sorted(queue.required_skills) if queue is not None else []
        new_cal = calendar_of(dept)
        if a.sla_clock == "business" and new_cal is None:
            a.sla_clock = "wall"
        resume_clocks(a, new_cal, now)
    cal = (await _calendars(session, [a.department]))[a.department]
    a.declined_by = []
    if responder_id is not None:
        candidates, responders = await candidates_for(session, [a.department], lock=True)
        target = next((c for c in candidates if c.id == responder_id), None)
        if target is None:
            raise NotFound(f"No responder {responder_id!r} in department {a.department!r}.")
        why = decisions.exclusion(
            target, decisions.Need(a.department, frozenset(a.required_skills), a.language)
        )
        if why is not None:
            raise InvalidTransition(f"Responder {responder_id!r} cannot take it: {why}.")
        a.status, a.responder_id = "offered", responder_id
        a.offer_expires_at = now + timedelta(seconds=config.offer_timeout_seconds)
        responders[responder_id].idle_since = now
    else:
        a.status, a.responder_id, a.offer_expires_at = "waiting", None, None
        a.waiting_since = a.waiting_since or now
    a.updated_at = now
    _decision(
        session,
        a,
        "transferred",
        {
            "by": actor.subject,
            "from_department": from_department,
            "from_responder_id": from_responder,
            "reason": reason,
        },
        now,
    )
    await session.flush()
    events: Events = [
        _event(
            AssignmentTransferredV1,
            a,
            now=now,
            calendar=cal,
            from_department=from_department,
            from_responder_id=from_responder,
            reason=reason,
        )
    ]
    if a.status == "offered":
        events.append(
            _event(AssignmentOfferedV1, a, now=now, calendar=cal, offer_expires_at=a.offer_expires_at)
        )
    departments = {a.department, from_department}
    return a, [*events, *await drain(session=session, departments=departments, config=config, now=now)]


async def resolve(
    *,
    session: AsyncSession,
    assignment_id: str,
    actor: Principal,
    outcome: str,
    config: RoutingConfig,
    now: datetime,
) -> tuple[Assignment, Events]:
    a = await _load(session, assignment_id, actor)
    _require(a, {"assigned", "awaiting_public"}, "resolve")
    _require_owner(a, actor, "resolve", supervisor_ok=True)
    cal = (await _calendars(session, [a.department]))[a.department]
    # The clocks stop for good: a resolved assignment never warns or breaches (Chatwoot #10178).
    pause_clocks(a, cal, now)
    for p in ("fr", "rs"):
        setattr(a, f"{p}_due_at", None)
        setattr(a, f"{p}_warn_at", None)
    a.status, a.outcome, a.resolved_at, a.updated_at = "resolved", outcome, now, now
    events: Events = [_event(AssignmentResolvedV1, a, now=now, calendar=cal, outcome=outcome)]
    for child in await AssignmentRepository(session).grouped_children(a.id):
        child.status, child.outcome, child.resolved_at, child.updated_at = "resolved", outcome, now, now
        events.append(_event(AssignmentResolvedV1, child, now=now, calendar=cal, outcome=outcome))
    _decision(session, a, "resolved", {"by": actor.subject, "outcome": outcome}, now)
    await session.flush()
    return a, [*events, *await drain(session=session, departments=[a.department], config=config, now=now)]


async def await_public(
    *, session: AsyncSession, assignment_id: str, actor: Principal, now: datetime
) -> tuple[Assignment, Events]:
    a = await _load(session, assignment_id, actor)
    _require(a, {"assigned"}, "pause")
    _require_owner(a, actor, "pause", supervisor_ok=True)
    cal = (await _calendars(session, [a.department]))[a.department]
    pause_clocks(a, cal, now, targets=_clock_targets(a))
    a.status, a.updated_at = "awaiting_public", now
    await session.flush()
    return a, [_event(AssignmentAwaitingPublicV1, a, now=now, calendar=cal)]


async def resume_work(
    *, session: AsyncSession, assignment_id: str, actor: Principal, now: datetime
) -> tuple[Assignment, Events]:
    a = await _load(session, assignment_id, actor)
    _require(a, {"awaiting_public"}, "resume")
    cal = (await _calendars(session, [a.department]))[a.department]
    resume_clocks(a, cal, now)
    a.status, a.updated_at = "assigned", now
    await session.flush()
    return a, [_event(AssignmentResumedV1, a, now=now, calendar=cal)]


async def responder_changed(
    *, session: AsyncSession, responder_id: str, config: RoutingConfig, now: datetime
) -> Events:
    """A responder's status, capacity or departments changed: their departments' queues may drain now."""
    depts = (await ResponderRepository(session).departments_of([responder_id]))[responder_id]
    return await drain(session=session, departments=depts, config=config, now=now) if depts else []


# --- timers: expired offers and SLA warnings/breaches ---


async def fire_timers(*, session: AsyncSession, config: RoutingConfig, now: datetime) -> Events:
    """Fire every timer due at ``now``. The database is the source of truth and each timer fires once:
    flags and statuses change in the same transaction as the events, so a crash just fires it again later."""
    repo = AssignmentRepository(session)
    events: Events = []
    touched: set[str] = set()
    expired = await repo.expired_offers(now=now, limit=config.timer_batch_size)
    due = await repo.due_timers(now=now, limit=config.timer_batch_size)
    calendars = await _calendars(session, {a.department for a in [*expired, *due]})
    for a in expired:
        cal = calendars.get(a.department)
        events.append(_event(AssignmentDeclinedV1, a, now=now, calendar=cal, reason="offer_expired"))
        _decision(session, a, "offer_expired", {"responder_id": a.responder_id}, now)
        await _back_to_queue(a, declined=a.responder_id)
        a.updated_at = now
        touched.add(a.department)
    for a in due:
        cal = calendars.get(a.department)
        for p, target in (("fr", "first_response"), ("rs", "resolve")):
            warn_at, due_at = getattr(a, f"{p}_warn_at"), getattr(a, f"{p}_due_at")
            if due_at is None:
                continue
            common = {"target": target, "due_at": due_at, "sla_policy": a.sla_policy or "standard"}
            if warn_at is not None and warn_at <= now and not getattr(a, f"{p}_warned"):
                setattr(a, f"{p}_warned", True)
                events.append(_event(SlaWarningV1, a, now=now, calendar=cal, **common))
            if due_at <= now and not getattr(a, f"{p}_breached"):
                setattr(a, f"{p}_breached", True)
                setattr(a, f"{p}_warned", True)
                events.append(_event(SlaBreachedV1, a, now=now, calendar=cal, **common))
                events.extend(await _escalate(session, a, cal, now))
                touched.add(a.department)
        a.updated_at = now
    await session.flush()
    if touched:
        events.extend(await drain(session=session, departments=touched, config=config, now=now))
    return events


async def _escalate(session: AsyncSession, a: Assignment, cal: sla.Calendar | None, now: datetime) -> Events:
    previous = a.priority
    action = (
        a.breach_action
        if a.breach_action in ("raise_priority", "reassign_supervisors", "notify")
        else "notify"
    )
    if action == "raise_priority":
        a.priority = max(1, a.priority - 1)
    elif action == "reassign_supervisors":
        queue_id = f"{a.department}.supervisors"
        queue = await QueueRepository(session).get(queue_id)
        if a.status == "offered" or a.status == "assigned":
            a.declined_by = []
        a.queue = queue_id
        a.required_skills = sorted(queue.required_skills) if queue is not None else ["supervisor"]
        a.status, a.responder_id, a.offer_expires_at = "waiting", None, None
        a.priority = 1
    _decision(
        session,
        a,
        "escalated",
        {"trigger": "sla_breach", "action": action, "previous_priority": previous},
        now,
    )
    return [
        _event(
            AssignmentEscalatedV1,
            a,
            now=now,
            calendar=cal,
            trigger="sla_breach",
            action=action,
            previous_priority=previous,
        )
    ]


# --- explanations and queues ---


async def explanation(*, session: AsyncSession, assignment_id: str, actor: Principal) -> dict[str, Any]:
    a = await AssignmentRepository(session).get(assignment_id)
    if a is None or not actor.can_see_department(a.department):
        raise NotFound(f"No assignment with id {assignment_id!r}.")
    rows = await DecisionRepository(session).of_assignment(a.id, limit=500)
    return {
        "assignment_id": a.id,
        "post_id": a.post_id,
        "rule_id": a.rule_id,
        "ruleset_version": a.ruleset_version,
        "status": a.status,
        "decisions": [{"kind": d.kind, "at": d.created_at, "explanation": d.explanation} for d in rows],
    }


# --- replies ---


@dataclass(frozen=True)
class ReplyContext:
    assignment_id: str
    post_id: str
    department: str
    platform: str
    visibility: str


@dataclass(frozen=True)
class CheckOutcome:
    check_id: str
    decision: str  # allow | review | block
    findings: list[dict[str, Any]]
    policy_version: str


async def reply_context(*, session: AsyncSession, assignment_id: str, actor: Principal) -> ReplyContext:
    a = await AssignmentRepository(session).get(assignment_id)
    if a is None or not actor.can_see_department(a.department):
        raise NotFound(f"No assignment with id {assignment_id!r}.")
    _require(a, {"assigned", "awaiting_public"}, "reply to")
    _require_owner(a, actor, "reply to")
    return ReplyContext(a.id, a.post_id, a.department, a.platform, a.visibility)


async def _publish(
    session: AsyncSession, a: Assignment, reply: Reply, cal: sla.Calendar | None, now: datetime
) -> Events:
    first = await ReplyRepository(session).published_count(a.id) == 0
    reply.status, reply.published_at = "published", now
    await session.flush()
    if first and a.fr_met_at is None:
        pause_clocks(a, cal, now, targets=("fr",))
        a.fr_met_at, a.fr_due_at, a.fr_warn_at = now, None, None
    return [
        _event(
            ReplyPublishedV1,
            a,
            now=now,
            calendar=cal,
            reply_id=reply.id,
            check_id=reply.check_id,
            policy_version=reply.policy_version,
            first_response=first,
        )
    ]


async def record_reply(
    *,
    session: AsyncSession,
    assignment_id: str,
    actor: Principal,
    text: str,
    media: list[dict[str, Any]],
    check: CheckOutcome,
    now: datetime,
) -> tuple[Reply, Approval | None, Events]:
    """Store a policy-checked reply (allow -> published, review -> awaiting a supervisor). Re-checks the
    assignment under lock: it may have changed hands while policy was being asked."""
    a = await _load(session, assignment_id, actor)
    _require(a, {"assigned", "awaiting_public"}, "reply to")
    _require_owner(a, actor, "reply to")
    cal = (await _calendars(session, [a.department]))[a.department]
    reply = Reply(
        id=str(uuid7()),
        assignment_id=a.id,
        responder_id=actor.subject,
        text=text,
        media=media,
        status="pending_approval",
        check_id=check.check_id,
        policy_version=check.policy_version,
        findings=check.findings,
        created_at=now,
        published_at=None,
    )
    await ReplyRepository(session).add(reply)
    if check.decision == "allow":
        return reply, None, await _publish(session, a, reply, cal, now)
    approval = Approval(
        id=str(uuid7()),
        reply_id=reply.id,
        assignment_id=a.id,
        department=a.department,
        status="pending",
        created_at=now,
    )
    await ApprovalRepository(session).add(approval)
    event = _event(
        ReplyApprovalRequestedV1,
        a,
        now=now,
        calendar=cal,
        reply_id=reply.id,
        approval_id=approval.id,
        check_id=check.check_id,
    )
    return reply, approval, [event]


async def decide_approval(
    *, session: AsyncSession, approval_id: str, actor: Principal, approve: bool, reason: str, now: datetime
) -> tuple[Approval, Reply, Events]:
    approvals = ApprovalRepository(session)
    ap = await approvals.get_for_update(approval_id)
    if ap is None or not actor.can_see_department(ap.department):
        raise NotFound(f"No approval with id {approval_id!r}.")
    if ap.status != "pending":
        raise InvalidTransition(f"The approval was already {ap.status}.")
    reply = await ReplyRepository(session).get(ap.reply_id)
    a = await AssignmentRepository(session).get_for_update(ap.assignment_id)
    if reply is None or a is None:
        raise NotFound(f"No approval with id {approval_id!r}.")
    cal = (await _calendars(session, [a.department]))[a.department]
    ap.status = "approved" if approve else "rejected"
    ap.supervisor_id, ap.reason, ap.decided_at = actor.subject, reason, now
    events: Events = [
        _event(
            ReplyApprovalDecidedV1,
            a,
            now=now,
            calendar=cal,
            reply_id=reply.id,
            approval_id=ap.id,
            decision=ap.status,
            supervisor_id=actor.subject,
        )
    ]
    if approve:
        events.extend(await _publish(session, a, reply, cal, now))
    else:
        reply.status = "rejected"
    await session.flush()
    return ap, reply, events


async def my_queue(
    *, session: AsyncSession, actor: Principal, limit: int
) -> tuple[Sequence[Assignment], Sequence[Assignment]]:
    repo = AssignmentRepository(session)
    mine = await repo.open_of_responder(actor.subject, limit=limit)
    waiting = await repo.waiting_in(actor.departments, limit=limit) if actor.departments else []
    return mine, waiting
