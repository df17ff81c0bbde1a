"""Recording events as facts about posts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.models import PostEvent
from services.metrics.repository import PostEventRepository
from shared.contracts.envelope import Envelope

# Free text stays out of metrics: it is personal information and no number needs it.
TEXT_FIELDS = frozenset({"text", "redacted_text", "findings"})


def attributes_of(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in TEXT_FIELDS}


async def record_event(
    *, session: AsyncSession, envelope: Envelope[Any], topic: str, partition: int, offset: int, now: datetime
) -> bool:
    """Store the event once; returns False when it was already stored."""
    repo = PostEventRepository(session)
    if await repo.get(envelope.id) is not None:
        return False
    await repo.add(
        PostEvent(
            event_id=envelope.id,
            post_id=envelope.subject,
            type=envelope.type,
            source=envelope.source,
            occurred_at=envelope.time,
            recorded_at=now,
            topic=topic,
            partition=partition,
            offset=offset,
            attributes=attributes_of(envelope.data.model_dump(mode="json")),
        )
    )
    return True
