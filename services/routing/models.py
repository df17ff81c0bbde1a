"""Routing's tables: the directory (departments, SLA policies, responders, queues), versioned rule sets, and
the assignment lifecycle with its decisions, replies and approvals.

One row per post in ``assignment`` (unique post_id): a post can never have two open assignments; transfers,
releases and re-offers change that row, never add another. Capacity is counted from the rows themselves
(offered/assigned/awaiting_public per responder), so there is no counter to drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.audit import AuditEntryMixin, AuditHeadMixin
from shared.db import TYPE_ANNOTATION_MAP, new_metadata
from shared.kafka import InboxMixin, OutboxMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Department(Base):
    __tablename__ = "department"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    hours: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"mon": [["08:30", "12:00"], ...], ...}
    state: Mapped[str | None] = mapped_column(String(3))
    closures: Mapped[list[str]] = mapped_column(JSON)  # ISO dates
    sla_policy: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime]


class SlaPolicy(Base):
    __tablename__ = "sla_policy"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    clock: Mapped[str] = mapped_column(String(10))  # business | wall
    first_response_seconds: Mapped[int] = mapped_column(Integer)
    resolve_seconds: Mapped[int] = mapped_column(Integer)
    warning_fraction: Mapped[float] = mapped_column(Float)
    breach_action: Mapped[str] = mapped_column(String(30))  # raise_priority | reassign_supervisors | notify
    updated_at: Mapped[datetime]


class Responder(Base):
    __tablename__ = "responder"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    skills: Mapped[list[str]] = mapped_column(JSON)
    languages: Mapped[list[str]] = mapped_column(JSON)
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))  # available | away | offline
    idle_since: Mapped[datetime | None]  # when work was last offered: longest idle goes first
    updated_at: Mapped[datetime]


class ResponderDepartment(Base):
    __tablename__ = "responder_department"

    responder_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("responder.id", ondelete="CASCADE"), primary_key=True
    )
    department: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Queue(Base):
    __tablename__ = "queue"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    department: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # standard | crisis | supervisors
    required_skills: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class RuleSetRow(Base):
    __tablename__ = "routing_ruleset"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    default: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class PostContext(Base):
    """What routing keeps of posts.received.v1: the receipt time (SLA clocks start there) and the thread."""

    __tablename__ = "post_context"

    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime]
    conversation_id: Mapped[str | None] = mapped_column(String(200), index=True)


class Assignment(Base):
    """At most one assignment per post (unique post_id): a post is never assigned twice."""

    __tablename__ = "assignment"
    __table_args__ = (
        Index("ix_assignment_status_department_priority", "status", "department", "priority"),
        Index("ix_assignment_responder_status", "responder_id", "status"),
        # The timer loop's four conditions (fired flag, then the time): each finds its due rows without
        # reading every open assignment (a scan of 74,000 waiting posts took 34 ms a second on SQLite).
        Index("ix_assignment_fr_warn_timer", "fr_warned", "fr_warn_at"),
        Index("ix_assignment_fr_due_timer", "fr_breached", "fr_due_at"),
        Index("ix_assignment_rs_warn_timer", "rs_warned", "rs_warn_at"),
        Index("ix_assignment_rs_due_timer", "rs_breached", "rs_due_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    post_id: Mapped[str] = mapped_column(String(64), unique=True)
    department: Mapped[str] = mapped_column(String(100), index=True)
    queue: Mapped[str] = mapped_column(String(100))
    responder_id: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer)
    # waiting | offered | assigned | awaiting_public | resolved | grouped
    status: Mapped[str] = mapped_column(String(20))
    rule_id: Mapped[str] = mapped_column(String(100))
    ruleset_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    platform: Mapped[str] = mapped_column(String(20), default="x")
    visibility: Mapped[str] = mapped_column(String(10), default="public")
    author_ref: Mapped[str] = mapped_column(String(128), default="", index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(200), index=True)
    language: Mapped[str | None] = mapped_column(String(20))
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    required_skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    declined_by: Mapped[list[str]] = mapped_column(JSON, default=list)
    grouped_with: Mapped[str | None] = mapped_column(String(36), index=True)
    post_received_at: Mapped[datetime | None]
    waiting_since: Mapped[datetime | None]
    offer_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    outcome: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    # SLA: a snapshot of the policy at creation, and each target's clock (see sla.py for the semantics).
    sla_policy: Mapped[str | None] = mapped_column(String(100))
    sla_clock: Mapped[str] = mapped_column(String(10), default="wall")
    warning_fraction: Mapped[float] = mapped_column(Float, default=0.75)
    breach_action: Mapped[str] = mapped_column(String(30), default="notify")
    fr_total: Mapped[float] = mapped_column(Float, default=0)
    fr_consumed: Mapped[float] = mapped_column(Float, default=0)
    fr_running_since: Mapped[datetime | None]
    fr_met_at: Mapped[datetime | None]
    fr_due_at: Mapped[datetime | None] = mapped_column(index=True)
    fr_warn_at: Mapped[datetime | None] = mapped_column(index=True)
    fr_warned: Mapped[bool] = mapped_column(Boolean, default=False)
    fr_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    rs_total: Mapped[float] = mapped_column(Float, default=0)
    rs_consumed: Mapped[float] = mapped_column(Float, default=0)
    rs_running_since: Mapped[datetime | None]
    rs_due_at: Mapped[datetime | None] = mapped_column(index=True)
    rs_warn_at: Mapped[datetime | None] = mapped_column(index=True)
    rs_warned: Mapped[bool] = mapped_column(Boolean, default=False)
    rs_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime | None]


@dataclass(slots=True)
class NewAssignment:
    """A post routed in this consumer batch, before its row exists: the columns of ``Assignment``, in a
    plain object. The batch's queue drain may offer it (and so set its status, responder and offer expiry)
    before its row is inserted with the others, with their final values, as one Core executemany: building
    an ORM object per post and flushing it (an INSERT, then an UPDATE for an offer) cost more than routing.
    Fields are in the table's column order; ``row()`` gives the insert's values."""

    id: str
    post_id: str
    department: str
    queue: str
    responder_id: str | None
    priority: int
    status: str
    rule_id: str
    ruleset_version: str
    created_at: datetime
    platform: str
    visibility: str
    author_ref: str
    conversation_id: str | None
    language: str | None
    labels: list[str]
    required_skills: list[str]
    declined_by: list[str]
    grouped_with: str | None
    post_received_at: datetime | None
    waiting_since: datetime | None
    offer_expires_at: datetime | None
    outcome: str | None
    resolved_at: datetime | None
    sla_policy: str | None
    sla_clock: str
    warning_fraction: float
    breach_action: str
    fr_total: float
    fr_consumed: float
    fr_running_since: datetime | None
    fr_met_at: datetime | None
    fr_due_at: datetime | None
    fr_warn_at: datetime | None
    fr_warned: bool
    fr_breached: bool
    rs_total: float
    rs_consumed: float
    rs_running_since: datetime | None
    rs_due_at: datetime | None
    rs_warn_at: datetime | None
    rs_warned: bool
    rs_breached: bool
    updated_at: datetime | None

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in NEW_ASSIGNMENT_COLUMNS}


NEW_ASSIGNMENT_COLUMNS: tuple[str, ...] = tuple(NewAssignment.__dataclass_fields__)


class Decision(Base):
    """Every routing decision with its explanation: rule matched, candidates, exclusions, rule-set version."""

    __tablename__ = "decision"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    assignment_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class Reply(Base):
    __tablename__ = "reply"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    assignment_id: Mapped[str] = mapped_column(String(36), index=True)
    responder_id: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))  # published | pending_approval | rejected
    check_id: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(64))
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]


class Approval(Base):
    __tablename__ = "approval"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reply_id: Mapped[str] = mapped_column(String(36), unique=True)
    assignment_id: Mapped[str] = mapped_column(String(36))
    department: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | approved | rejected
    supervisor_id: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


class AuditEntry(AuditEntryMixin, Base):
    """The service's hash-chained audit log (shared.audit, docs/audit.md)."""

    __tablename__ = "audit_entry"


class AuditHead(AuditHeadMixin, Base):
    __tablename__ = "audit_head"
