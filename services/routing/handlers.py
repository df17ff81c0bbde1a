from __future__ import annotations

from typing import Any

from services.routing import audit, service
from shared.contracts import PostReceivedV1, PostScreenedV1
from shared.contracts.envelope import Envelope
from shared.kafka import EventRouter, HandlerContext
from shared.kafka.consumer import each_item


def build_router(config: service.RoutingConfig) -> EventRouter:
    router = EventRouter()

    @router.on_batch(PostReceivedV1)
    async def on_posts_received(batch: list[tuple[HandlerContext, Envelope[Any]]]) -> None:
        # Only the receipt time and thread id: SLA clocks start at receipt, continuity follows the thread.
        posts = each_item(batch, lambda _ctx, e: e.data)
        if posts:
            await service.record_posts_received(session=batch[0][0].session, posts=[p for _, p in posts])

    @router.on_batch(PostScreenedV1)
    async def on_posts_screened(batch: list[tuple[HandlerContext, Envelope[Any]]]) -> None:
        # One routing pass and one queue drain for the whole batch (one transaction).
        posts = each_item(batch, lambda _ctx, e: e.data)  # a failed post is retried alone by the runner
        if not posts:
            return
        first = batch[0][0]
        per_post = await service.assign_posts(
            session=first.session, posts=[p for _, p in posts], config=config, now=first.now
        )
        for (ctx, _), events in zip(posts, per_post, strict=True):
            for event in events:
                ctx.emit(event)
            audit.record_events(ctx.session, events, actor=audit.CONSUMER_ACTOR)

    return router
