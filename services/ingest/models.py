from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP, new_metadata
from shared.kafka import InboxMixin, OutboxMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Post(Base):
    """A canonical post. Raw author details stay here; events carry only ``author_ref``."""

    __tablename__ = "post"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        # Near-duplicate lookups: by text hash (selective) and time; the author is matched in Python. An
        # (author_ref, text_hash) index made SQLite probe every author x every hash of a 2,000-post group.
        Index("ix_post_text_hash_created_at", "text_hash", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[str] = mapped_column(String(200))
    author_handle: Mapped[str | None] = mapped_column(String(200))
    author_display_name: Mapped[str | None] = mapped_column(String(200))
    author_ref: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    text_original: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    language_confidence: Mapped[float] = mapped_column(Float)
    urls: Mapped[list[str]] = mapped_column(JSON)
    hashtags: Mapped[list[str]] = mapped_column(JSON)
    mentions: Mapped[list[str]] = mapped_column(JSON)
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    visibility: Mapped[str] = mapped_column(String(10))
    conversation_id: Mapped[str | None] = mapped_column(String(200))
    in_reply_to: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(2048))
    duplicate_of: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    received_at: Mapped[datetime]


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"
