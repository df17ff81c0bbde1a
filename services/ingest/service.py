"""Accepting posts: store once per (platform, external_id), emit posts.received.v1 in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.models import Post
from services.ingest.repository import PostRepository
from services.ingest.schemas import PostCreate
from shared.contracts import PostReceivedV1, new_event
from shared.ids import pseudonym, uuid7
from shared.kafka import OutboxWriter

SOURCE = "/switchboard/ingest"


def author_ref(*, secret: bytes, platform: str, author_id: str) -> str:
    return pseudonym(secret, platform, author_id)


def build_post(*, data: PostCreate, post_id: str, secret: bytes, now: datetime) -> Post:
    return Post(
        id=post_id,
        platform=data.platform.value,
        external_id=data.external_id,
        account=data.account,
        author_id=data.author.id,
        author_handle=data.author.handle,
        author_ref=author_ref(secret=secret, platform=data.platform.value, author_id=data.author.id),
        text=data.text,
        visibility=data.visibility,
        conversation_id=data.conversation_id,
        in_reply_to=data.in_reply_to,
        created_at=data.created_at.astimezone(UTC),
        received_at=now,
    )


def received_event(post: Post) -> PostReceivedV1:
    return PostReceivedV1(
        post_id=post.id,
        platform=post.platform,
        external_id=post.external_id,
        account=post.account,
        author_ref=post.author_ref,
        text=post.text,
        visibility=post.visibility,
        conversation_id=post.conversation_id,
        in_reply_to=post.in_reply_to,
        created_at=post.created_at,
        received_at=post.received_at,
    )


async def accept_post(
    *,
    session: AsyncSession,
    outbox: OutboxWriter,
    data: PostCreate,
    secret: bytes,
    now: datetime,
) -> tuple[str, bool]:
    """Returns ``(post_id, duplicate)``. Flushes, never commits."""
    repo = PostRepository(session)
    existing = await repo.get_by_external_id(platform=data.platform.value, external_id=data.external_id)
    if existing is not None:
        return existing.id, True
    post = build_post(data=data, post_id=str(uuid7()), secret=secret, now=now)
    try:
        async with session.begin_nested():
            await repo.add(post)
    except IntegrityError:
        # A concurrent request stored the same post first: answer as the duplicate it is.
        existing = await repo.get_by_external_id(platform=data.platform.value, external_id=data.external_id)
        if existing is None:
            raise
        return existing.id, True
    outbox.add(session, new_event(received_event(post), source=SOURCE, time=now))
    return post.id, False
