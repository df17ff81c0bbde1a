from __future__ import annotations

from typing import Any

from services.policy import service
from shared.contracts import PostReceivedV1
from shared.contracts.envelope import Envelope
from shared.kafka import EventRouter, HandlerContext

router = EventRouter()


@router.on_batch(PostReceivedV1)
async def on_posts_received(batch: list[tuple[HandlerContext, Envelope[Any]]]) -> None:
    # The whole consumer batch at once: one read of what was screened before, one insert.
    first = batch[0][0]
    screened = await service.screen_posts(
        session=first.session, posts=[e.data for _, e in batch], now=first.now
    )
    for (ctx, _), event in zip(batch, screened, strict=True):
        if event is not None:
            ctx.emit(event)
