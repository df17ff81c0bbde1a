from __future__ import annotations

from typing import Any

from services.routing import audit, service
from shared.contracts import PostReceivedV1, PostScreenedV1
from shared.contracts.envelope import Envelope
from shared.kafka import EventRouter, HandlerContext


def build_router(config: service.RoutingConfig) -> EventRouter:
    router = EventRouter()

    @router.on(PostReceivedV1)
    async def on_post_received(ctx: HandlerContext, envelope: Envelope[Any]) -> None:
        # Only the receipt time and thread id: SLA clocks start at receipt, continuity follows the thread.
        await service.record_post_received(session=ctx.session, post=envelope.data)

    @router.on(PostScreenedV1)
    async def on_post_screened(ctx: HandlerContext, envelope: Envelope[Any]) -> None:
        events = await service.assign_post(
            session=ctx.session, post=envelope.data, config=config, now=ctx.now
        )
        for event in events:
            ctx.emit(event)
        audit.record_events(ctx.session, events, actor=audit.CONSUMER_ACTOR)

    return router
