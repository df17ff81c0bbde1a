"""The routing service's audit trail (shared.audit): the life of every assignment and reply, and changes to
the routing rules, appended in the transaction that makes them.

The assignment lifecycle is audited from the events routing emits (one entry per ``assignments.v1`` and
``replies.v1`` event: created, offered, accepted, declined, released, transferred, escalated, awaiting the
public, resumed, resolved; approval requested and decided; reply published), recorded where they are written
to the outbox, so every path that changes an assignment (a request, the consumer, the timers) is covered by
the same few lines. SLA warnings are not audited; a breach is, through the escalation it causes.

Details carry ids, departments, queues, statuses and outcomes; never post or reply text, author details or
the free-text reasons staff give (those stay in routing's own tables: decisions, approvals).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.models import AuditEntry, AuditHead, RuleSetRow
from shared.audit import AuditTrail
from shared.contracts.envelope import EVENT_TYPE_PREFIX, Envelope
from shared.contracts.events import AssignmentDeclinedV1
from shared.contracts.topics import Topic

trail = AuditTrail(AuditEntry, AuditHead)

#: The actor of what routing does by itself: routing a screened post, and the offer and SLA timers.
CONSUMER_ACTOR = "service:routing.assignment"
TIMER_ACTOR = "service:routing.timers"

AUDITED_TOPICS = frozenset({Topic.ASSIGNMENTS.value, Topic.REPLIES.value})
DETAIL_FIELDS = (
    "post_id",
    "assignment_id",
    "department",
    "queue",
    "responder_id",
    "priority",
    "status",
    "rule_id",
    "ruleset_version",
    "grouped_with",
    "sla_policy",
    "from_department",
    "from_responder_id",
    "trigger",
    "action",
    "previous_priority",
    "outcome",
    "reply_id",
    "approval_id",
    "check_id",
    "decision",
    "supervisor_id",
    "policy_version",
    "first_response",
)


_FIELDS_OF: dict[type[BaseModel], tuple[str, ...]] = {}


def _detail_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The DETAIL_FIELDS an event model has, in DETAIL_FIELDS order (worked out once per model)."""
    found = _FIELDS_OF.get(model)
    if found is None:
        found = _FIELDS_OF[model] = tuple(k for k in DETAIL_FIELDS if k in model.model_fields)
    return found


def _object(envelope: Envelope[Any]) -> tuple[str, str]:
    data = envelope.data
    if envelope.type.startswith(f"{EVENT_TYPE_PREFIX}reply.approval_"):
        return "approval", str(data.approval_id)
    if envelope.type.startswith(f"{EVENT_TYPE_PREFIX}reply."):
        return "reply", str(data.reply_id)
    return "assignment", str(data.assignment_id)


def record_events(session: AsyncSession, events: Iterable[Envelope[Any]], *, actor: str) -> None:
    """One audit entry per assignment or reply event about to be written to the outbox."""
    for envelope in events:
        data = envelope.data
        if getattr(data, "topic", None) not in AUDITED_TOPICS:
            continue
        values = data.__dict__  # the model's fields: a missing one via getattr costs pydantic an exception
        details = {k: values[k] for k in _detail_fields(type(data)) if values[k] is not None}
        if isinstance(data, AssignmentDeclinedV1):
            details["reason"] = data.reason  # "declined" or "offer_expired", never free text
        object_type, object_id = _object(envelope)
        trail.record(
            session,
            actor=actor,
            action=envelope.type.removeprefix(EVENT_TYPE_PREFIX).removesuffix(".v1"),
            object_type=object_type,
            object_id=object_id,
            at=data.occurred_at,
            details=details,
        )


def ruleset_changed(session: AsyncSession, row: RuleSetRow, *, actor: str, action: str) -> None:
    """``action``: ``routing.rules_created`` or ``routing.rules_activated``."""
    trail.record(
        session,
        actor=actor,
        action=action,
        object_type="routing_ruleset",
        object_id=str(row.version),
        details={"version": row.version, "active": row.active, "rule_count": len(row.rules)},
    )
