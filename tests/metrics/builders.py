"""Event builders for metrics tests: the envelopes routing, policy and ingest would publish."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.contracts import events as ev
from shared.contracts.envelope import Envelope, EventModel, new_event

SOURCES = {
    ev.PostReceivedV1: "switchboard/ingest",
    ev.PostScreenedV1: "switchboard/policy",
}


def envelope(model: EventModel, *, at: datetime, event_id: str | None = None) -> Envelope[Any]:
    return new_event(
        model, source=SOURCES.get(type(model), "switchboard/routing"), time=at, event_id=event_id
    )


def received(post_id: str, at: datetime, *, text: str = "Is the M4 closed? #roadworks", platform: str = "x"):
    return envelope(
        ev.PostReceivedV1(
            post_id=post_id,
            platform=ev.Platform(platform),
            external_id=f"ext-{post_id}",
            account="@Agency",
            author_ref="ref",
            text=text,
            created_at=at,
            received_at=at,
        ),
        at=at,
    )


def screened(
    post_id: str, at: datetime, *, priority: int = 3, labels: tuple[str, ...] = (), platform: str = "x"
):
    return envelope(
        ev.PostScreenedV1(
            post_id=post_id,
            screening_id=f"s-{post_id}",
            policy_version="p1",
            labels=list(labels),
            risk="low",
            priority=priority,
            redacted_text="redacted",
            platform=ev.Platform(platform),
            account="@Agency",
            author_ref="ref",
            screened_at=at,
        ),
        at=at,
    )


def _common(post_id: str, received_at: datetime, at: datetime, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "post_id": post_id,
        "assignment_id": f"a-{post_id}",
        "department": "transport",
        "queue": "general",
        "responder_id": None,
        "priority": 3,
        "post_received_at": received_at,
        "occurred_at": at,
    }
    base.update(kw)
    return base


def lifecycle(model: type[EventModel], post_id: str, received_at: datetime, at: datetime, **kw: Any):
    """Any assignment/reply/SLA event; ``kw`` overrides the common fields and fills the specific ones."""
    defaults: dict[type[EventModel], dict[str, Any]] = {
        ev.AssignmentCreatedV1: {"status": "waiting", "rule_id": "r1", "ruleset_version": "v1"},
        ev.AssignmentOfferedV1: {"offer_expires_at": at},
        ev.AssignmentDeclinedV1: {"reason": "declined"},
        ev.AssignmentReleasedV1: {"reason": "going home"},
        ev.AssignmentTransferredV1: {"from_department": "transport", "reason": "wrong desk"},
        ev.AssignmentEscalatedV1: {"trigger": "sla_warning", "action": "notify", "previous_priority": 3},
        ev.AssignmentResolvedV1: {"outcome": "answered"},
        ev.ReplyApprovalRequestedV1: {"reply_id": "rp", "approval_id": "ap", "check_id": "c"},
        ev.ReplyApprovalDecidedV1: {
            "reply_id": "rp",
            "approval_id": "ap",
            "decision": "approved",
            "supervisor_id": "sup",
        },
        ev.ReplyPublishedV1: {
            "reply_id": "rp",
            "check_id": "c",
            "policy_version": "p1",
            "first_response": True,
        },
    }
    values = _common(post_id, received_at, at) | defaults.get(model, {}) | kw
    return envelope(model(**values), at=at, event_id=str(uuid.uuid4()))
