from __future__ import annotations

from typing import Any

from services.routing import service
from services.routing.config import RoutingSettings
from shared.contracts import PostScreenedV1
from shared.contracts.envelope import Envelope
from shared.kafka import EventRouter, HandlerContext


def build_router(settings: RoutingSettings) -> EventRouter:
    router = EventRouter()

    @router.on(PostScreenedV1)
    async def on_post_screened(ctx: HandlerContext, envelope: Envelope[Any]) -> None:
        created = await service.assign_post(
            session=ctx.session,
            post=envelope.data,
            default_department=settings.default_department,
            crisis_department=settings.crisis_department,
            now=ctx.now,
        )
        if created is not None:
            ctx.emit(created)

    return router
