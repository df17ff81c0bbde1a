from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.audit import AuditEntryMixin, AuditHeadMixin
from shared.db import TYPE_ANNOTATION_MAP, new_metadata
from shared.kafka import InboxMixin, OutboxMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Screening(Base):
    """The result of screening one inbound post, kept as the record of the decision."""

    __tablename__ = "screening"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    post_id: Mapped[str] = mapped_column(String(64), unique=True)
    policy_version: Mapped[str] = mapped_column(String(64))
    labels: Mapped[list[str]] = mapped_column(JSON)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    risk: Mapped[str] = mapped_column(String(10))
    priority: Mapped[int] = mapped_column(Integer)
    redacted_text: Mapped[str] = mapped_column(Text)
    failed_rules: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    screened_at: Mapped[datetime]


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


class PolicyPackVersion(Base):
    """An uploaded pack version: immutable once stored (a change is a new version)."""

    __tablename__ = "policy_pack_version"

    policy_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(32))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    rule_count: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class PolicyActivation(Base):
    """Append-only: the latest row names the active pack; the rows are the audit trail of who, when, why."""

    __tablename__ = "policy_activation"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    policy_version: Mapped[str] = mapped_column(String(64))
    activated_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    activated_at: Mapped[datetime]


class ModeChange(Base):
    """Append-only audit of caretaker and crisis mode switches; the latest per (mode, jurisdiction) holds."""

    __tablename__ = "mode_change"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    mode: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    changed_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    changed_at: Mapped[datetime]


class Check(Base):
    """One pre-publication check of an outbound reply and its result (a record of the decision).

    The draft is kept with personal information masked plus the SHA-256 of the original: enough to prove what
    was checked without making the check table a second store of customers' identifiers."""

    __tablename__ = "outbound_check"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    policy_version: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(10))
    platform: Mapped[str] = mapped_column(String(20))
    visibility: Mapped[str] = mapped_column(String(10))
    in_reply_to_post_id: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(100))
    text_redacted: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    failed_rules: Mapped[list[str]] = mapped_column(JSON)
    active_modes: Mapped[list[str]] = mapped_column(JSON)
    checked_by: Mapped[str] = mapped_column(String(200))
    checked_at: Mapped[datetime]


class AuditEntry(AuditEntryMixin, Base):
    """The service's hash-chained audit log (shared.audit, docs/audit.md)."""

    __tablename__ = "audit_entry"


class AuditHead(AuditHeadMixin, Base):
    __tablename__ = "audit_head"
