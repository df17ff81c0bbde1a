from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.audit import AuditEntryMixin, AuditHeadMixin
from shared.db import TYPE_ANNOTATION_MAP, new_metadata
from shared.kafka import InboxMixin, OutboxMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class PostEvent(Base):
    """Every event about a post, once (keyed by event id), without its free text."""

    __tablename__ = "post_event"
    __table_args__ = (Index("ix_post_event_post_id_occurred_at", "post_id", "occurred_at"),)

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    post_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(500))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    topic: Mapped[str] = mapped_column(String(300))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)


class PostFact(Base):
    """One row per post, folded from all its events (services.metrics.facts): what every number reads."""

    __tablename__ = "post_fact"
    __table_args__ = (
        # The timeliness queries: one department's window, or every department's window.
        Index("ix_post_fact_department_received_at", "department", "received_at"),
        Index("ix_post_fact_received_at", "received_at"),
        # The live backlog reads only open posts.
        Index("ix_post_fact_status_queue", "status", "queue"),
    )

    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[int | None] = mapped_column(Integer)
    department: Mapped[str | None] = mapped_column(String(100))
    queue: Mapped[str | None] = mapped_column(String(100))
    responder_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str | None] = mapped_column(String(20))
    waiting_since: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    screened_at: Mapped[datetime | None]
    assigned_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    assign_seconds: Mapped[float | None] = mapped_column(Float)
    first_response_seconds: Mapped[float | None] = mapped_column(Float)
    resolve_seconds: Mapped[float | None] = mapped_column(Float)
    assign_business_seconds: Mapped[float | None] = mapped_column(Float)
    first_response_business_seconds: Mapped[float | None] = mapped_column(Float)
    resolve_business_seconds: Mapped[float | None] = mapped_column(Float)
    first_response_due_at: Mapped[datetime | None]
    resolve_due_at: Mapped[datetime | None]
    warned_first_response: Mapped[bool] = mapped_column(Boolean)
    warned_resolve: Mapped[bool] = mapped_column(Boolean)
    breached_first_response: Mapped[bool] = mapped_column(Boolean)
    breached_resolve: Mapped[bool] = mapped_column(Boolean)
    sla_met: Mapped[bool | None] = mapped_column(Boolean)
    at_risk: Mapped[bool] = mapped_column(Boolean)
    transfers: Mapped[int] = mapped_column(Integer)
    escalations: Mapped[int] = mapped_column(Integer)
    declines: Mapped[int] = mapped_column(Integer)
    releases: Mapped[int] = mapped_column(Integer)
    approvals_requested: Mapped[int] = mapped_column(Integer)
    approvals_rejected: Mapped[int] = mapped_column(Integer)
    replies: Mapped[int] = mapped_column(Integer)


class PostLabel(Base):
    """Screening and routing labels of a post, for ``group_by=label`` (a post counts once per label)."""

    __tablename__ = "post_label"
    __table_args__ = (Index("ix_post_label_label", "label"),)

    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(100), primary_key=True)


class PostDepartment(Base):
    """Every department a post has been in (a transfer keeps the old one): who may read its timeline."""

    __tablename__ = "post_department"

    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str] = mapped_column(String(100), primary_key=True)


class TimelinessDay(Base):
    """Rollup: the exact timeliness summary of one department's UTC day (posts received that day).

    Serves the dashboards' commonest query (by department, daily buckets) without reading every post. Kept
    exact by recomputation: a change to any post of the cell marks it in ``timeliness_day_dirty``; a
    background pass recomputes dirty cells, and queries compute dirty days live instead of reading them.
    """

    __tablename__ = "timeliness_day"

    department: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[datetime] = mapped_column(primary_key=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class TimelinessDayDirty(Base):
    """A (department, day) whose rollup is stale; ``version`` grows with each mark so that a recompute only
    clears the marks it has seen."""

    __tablename__ = "timeliness_day_dirty"
    __table_args__ = (Index("ix_timeliness_day_dirty_day", "day"),)

    department: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[datetime] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class VolumeBucket(Base):
    """Inbound posts per hour per department or hashtag. Counts add up, so arrival order does not matter."""

    __tablename__ = "volume_bucket"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class VolumeSpike(Base):
    """A detected spike; at most one per (kind, key, hour)."""

    __tablename__ = "volume_spike"
    __table_args__ = (
        UniqueConstraint("kind", "key", "bucket_start"),
        Index("ix_volume_spike_detected_at", "detected_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(100))
    bucket_start: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer)
    baseline_mean: Mapped[float] = mapped_column(Float)
    baseline_stddev: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    detected_at: Mapped[datetime]
    emitted: Mapped[bool] = mapped_column(Boolean)


class DeadLetter(Base):
    """A message a consumer group parked on a dead-letter topic, copied here for ops to list and replay."""

    __tablename__ = "dead_letter"
    __table_args__ = (
        UniqueConstraint("dlq_topic", "dlq_partition", "dlq_offset"),
        Index("ix_dead_letter_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    dlq_topic: Mapped[str] = mapped_column(String(400))
    dlq_partition: Mapped[int] = mapped_column(Integer)
    dlq_offset: Mapped[int] = mapped_column(BigInteger)
    original_topic: Mapped[str | None] = mapped_column(String(300))
    original_partition: Mapped[int | None] = mapped_column(Integer)
    original_offset: Mapped[int | None] = mapped_column(BigInteger)
    consumer_group: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(1000))
    event_id: Mapped[str | None] = mapped_column(String(200))
    event_type: Mapped[str | None] = mapped_column(String(200))
    key: Mapped[str | None] = mapped_column(String(200))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]
    replay_count: Mapped[int] = mapped_column(Integer)


class DeadLetterReplay(Base):
    """Audit: who re-published which dead letter, when."""

    __tablename__ = "dead_letter_replay"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    dead_letter_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    replayed_at: Mapped[datetime]


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


class AuditEntry(AuditEntryMixin, Base):
    """The service's hash-chained audit log (shared.audit, docs/audit.md)."""

    __tablename__ = "audit_entry"


class AuditHead(AuditHeadMixin, Base):
    __tablename__ = "audit_head"
