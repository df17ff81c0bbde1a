from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    screened_at: Mapped[datetime]


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"
