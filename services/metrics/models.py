from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"
