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
    # The whole consumer batch at once: the pack and modes read once, each post screened inside each_item (a
    # post whose screening raises is left out; the runner retries it alone, then dead-letters it), then one
    # read of what was screened before and one insert.
    first = batch[0][0]
    inputs = await service.screening_inputs(session=first.session, now=first.now)
    screened = each_item(batch, lambda _ctx, e: service.screen_one(inputs, e.data))
    if not screened:
        return
    events = await service.store_screenings(session=first.session, screened=[s for _, s in screened])
    for (ctx, _), event in zip(screened, events, strict=True):
        if event is not None:
            ctx.emit(event)
