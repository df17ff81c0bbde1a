from __future__ import annotations

from typing import Any

from services.policy import service
from shared.contracts import PostReceivedV1
from shared.contracts.envelope import Envelope
from shared.kafka import EventRouter, HandlerContext
from shared.kafka.consumer import each_item

router = EventRouter()


@router.on_batch(PostReceivedV1)
async def on_posts_received(batch: list[tuple[HandlerContext, Envelope[Any]]]) -> None:
    # The whole consumer batch at once: one read of what was screened before, one insert. A post whose
    # per-item phase fails is left out (each_item): the runner retries it alone, then dead-letters it.
    posts = each_item(batch, lambda _ctx, e: e.data)
    if not posts:
        return
    first = batch[0][0]
    screened = await service.screen_posts(session=first.session, posts=[p for _, p in posts], now=first.now)
    for (ctx, _), event in zip(posts, screened, strict=True):
        if event is not None:
            ctx.emit(event)
