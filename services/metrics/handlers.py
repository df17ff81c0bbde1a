from __future__ import annotations

from typing import Any

from services.metrics import service
from shared.contracts import EVENT_TYPES
from shared.contracts.envelope import Envelope
from shared.kafka import EventRouter, HandlerContext

router = EventRouter()


async def on_any_event(ctx: HandlerContext, envelope: Envelope[Any]) -> None:
    await service.record_event(
        session=ctx.session,
        envelope=envelope,
        topic=ctx.topic,
        partition=ctx.partition,
        offset=ctx.offset,
        now=ctx.now,
    )


for _model in EVENT_TYPES.values():
    router.add(_model, on_any_event)
