from __future__ import annotations

from typing import Any

from services.policy import service
from shared.contracts import PostReceivedV1
from shared.contracts.envelope import Envelope
from shared.kafka import EventRouter, HandlerContext

router = EventRouter()


@router.on(PostReceivedV1)
async def on_post_received(ctx: HandlerContext, envelope: Envelope[Any]) -> None:
    screened = await service.screen_post(session=ctx.session, post=envelope.data, now=ctx.now)
    if screened is not None:
        ctx.emit(screened)
