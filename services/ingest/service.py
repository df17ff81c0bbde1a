"""Accepting posts: canonicalise (pure), then store once per (platform, external_id) with the
posts.received.v1 event in the same transaction, marking near-duplicates of the same author's same text.

Functions here execute in the caller's transaction and never commit: the group committer
(``services.ingest.group_commit``) owns the transaction so that many requests share one commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.normalise.language import detect_language
from services.ingest.normalise.text import (
    MAX_ENTITIES,
    extract_hashtags,
    extract_mentions,
    extract_urls,
    normalise_text,
)
from services.ingest.repository import PostRepository
from services.ingest.schemas import PostCreate
from shared.contracts import PostReceivedV1, new_event
from shared.contracts.envelope import Envelope
from shared.ids import pseudonym, uuid7
from shared.kafka.outbox import CORRELATION_HEADER

SOURCE = "/switchboard/ingest"
#: pydantic remembers parametrised generic models only weakly: without a reference held here, ``new_event``
#: built (and garbage-collected) the ``Envelope[PostReceivedV1]`` class again for nearly every post.
_RECEIVED_ENVELOPE = Envelope[PostReceivedV1]


class EmptyAfterNormalisation(ValueError):
    """The text was only invisible characters or whitespace."""


def author_ref(*, secret: bytes, platform: str, author_id: str) -> str:
    return pseudonym(secret, platform, author_id)


def text_hash(text: str) -> str:
    """Key of near-duplicate detection: the normalised text, case-folded (floods vary the case)."""
    return hashlib.sha256(text.casefold().encode()).hexdigest()


@dataclass(frozen=True)
class CanonicalPost:
    """Everything ingest stores about a post, before it knows whether the post is a duplicate."""

    id: str
    platform: str
    external_id: str
    account: str
    author_id: str
    author_handle: str | None
    author_display_name: str | None
    author_ref: str
    text: str
    text_original: str
    text_hash: str
    language: str
    language_confidence: float
    urls: list[str]
    hashtags: list[str]
    mentions: list[str]
    media: list[dict[str, Any]]
    visibility: str
    conversation_id: str | None
    in_reply_to: str | None
    url: str | None
    created_at: datetime
    received_at: datetime
    correlation_id: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.platform, self.external_id


def _clean_list(values: Sequence[str] | None, fallback: list[str], *, strip: str = "") -> list[str]:
    cleaned = [v.strip().lstrip(strip).lower() if strip else v.strip() for v in values or []]
    cleaned = [v for v in cleaned if v]
    return list(dict.fromkeys(cleaned))[:MAX_ENTITIES] if cleaned else fallback


def canonicalise(
    *,
    data: PostCreate,
    secret: bytes,
    now: datetime,
    post_id: str | None = None,
    correlation_id: str | None = None,
) -> CanonicalPost:
    """Pure: the canonical post for ``data`` (text normalised, entities and language found)."""
    text = normalise_text(data.text)
    if not text:
        raise EmptyAfterNormalisation("The text is empty once invisible characters and spaces are removed.")
    language, confidence = detect_language(text, hint=data.language)
    platform = data.platform.value
    return CanonicalPost(
        id=post_id or str(uuid7(int(now.timestamp() * 1000))),
        platform=platform,
        external_id=data.external_id,
        account=data.account,
        author_id=data.author.id,
        author_handle=data.author.handle,
        author_display_name=data.author.display_name,
        author_ref=author_ref(secret=secret, platform=platform, author_id=data.author.id),
        text=text,
        text_original=data.text_original if data.text_original is not None else data.text,
        text_hash=text_hash(text),
        language=language,
        language_confidence=confidence,
        urls=_clean_list(data.urls, extract_urls(text)),
        hashtags=_clean_list(data.hashtags, extract_hashtags(text), strip="#"),
        mentions=_clean_list(data.mentions, extract_mentions(text), strip="@"),
        media=[m.model_dump(exclude_none=True) for m in data.media],
        visibility=data.visibility,
        conversation_id=data.conversation_id,
        in_reply_to=data.in_reply_to,
        url=data.url,
        created_at=data.created_at.astimezone(UTC),
        received_at=now,
        correlation_id=correlation_id,
    )


@dataclass(frozen=True)
class Outcome:
    id: str
    duplicate: bool
    duplicate_of: str | None = None


def find_near_duplicate(
    *, post: CanonicalPost, originals: Sequence[tuple[datetime, str]], window: timedelta
) -> str | None:
    """The earliest original (``(created_at, id)``) within ``window`` of the post, if any."""
    for created_at, post_id in sorted(originals):
        if abs(created_at - post.created_at) <= window and post_id != post.id:
            return post_id
    return None


def to_row(post: CanonicalPost, *, duplicate_of: str | None) -> dict[str, Any]:
    """The ``post`` table row (raw author details included: they stay in ingest's database)."""
    row = {k: v for k, v in post.__dict__.items() if k != "correlation_id"}
    row["duplicate_of"] = duplicate_of
    return row


def outbox_row(post: CanonicalPost, *, duplicate_of: str | None, now: datetime) -> dict[str, Any]:
    """The outbox row of the post's posts.received.v1 event, as ``OutboxWriter.add`` would write it."""
    envelope = new_event(received_event(post, duplicate_of=duplicate_of), source=SOURCE, time=now)
    headers = {"ce_type": envelope.type}
    if post.correlation_id:
        headers[CORRELATION_HEADER] = post.correlation_id
    return {
        "event_id": envelope.id,
        "topic": envelope.data.topic,
        "key": envelope.subject,
        "value": envelope.model_dump_json().encode(),
        "headers": headers,
        "created_at": now,
    }


def received_event(post: CanonicalPost, *, duplicate_of: str | None) -> PostReceivedV1:
    """The event: never raw author details (id, handle, display name), only ``author_ref``."""
    return PostReceivedV1.model_validate(
        {
            "post_id": post.id,
            "platform": post.platform,
            "external_id": post.external_id,
            "account": post.account,
            "author_ref": post.author_ref,
            "text": post.text,
            "visibility": post.visibility,
            "conversation_id": post.conversation_id,
            "in_reply_to": post.in_reply_to,
            "created_at": post.created_at,
            "received_at": post.received_at,
            "duplicate_of": duplicate_of,
            "language": post.language,
            "language_confidence": post.language_confidence,
            "urls": post.urls,
            "hashtags": post.hashtags,
            "mentions": post.mentions,
            "media": post.media,
            "url": post.url,
        }
    )


async def store_posts(
    *,
    session: AsyncSession,
    posts: Sequence[CanonicalPost],
    window: timedelta,
    now: datetime,
) -> list[Outcome]:
    """Store a group of posts in the caller's transaction; one outcome per post, in order. Flushes only.

    Exact duplicates (same platform + external_id, stored before or earlier in the group) answer with the
    first post's id and store nothing. Near-duplicates are stored with ``duplicate_of`` set.
    """
    repo = PostRepository(session)
    existing = await repo.existing_ids(p.key for p in posts)
    originals: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    if window > timedelta(0) and posts:
        since = min(p.created_at for p in posts) - window
        until = max(p.created_at for p in posts) + window
        for ref, digest, post_id, created_at in await repo.near_duplicate_candidates(
            keys=((p.author_ref, p.text_hash) for p in posts), since=since, until=until
        ):
            originals.setdefault((ref, digest), []).append((created_at, post_id))
    outcomes: list[Outcome] = []
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for post in posts:
        known = existing.get(post.key)
        if known is not None:
            outcomes.append(Outcome(id=known, duplicate=True))
            continue
        near_key = (post.author_ref, post.text_hash)
        duplicate_of = (
            find_near_duplicate(post=post, originals=originals.get(near_key, ()), window=window)
            if window > timedelta(0)
            else None
        )
        rows.append(to_row(post, duplicate_of=duplicate_of))
        events.append(outbox_row(post, duplicate_of=duplicate_of, now=now))
        existing[post.key] = post.id
        if duplicate_of is None:
            originals.setdefault(near_key, []).append((post.created_at, post.id))
        outcomes.append(Outcome(id=post.id, duplicate=False, duplicate_of=duplicate_of))
    await repo.insert_many(posts=rows, outbox=events)
    return outcomes
