"""Events in: every post event is recorded once and folded into its post's facts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.metrics import service
from services.metrics.config import MetricsSettings
from services.metrics.stats import SpikeRule
from shared.contracts import EVENT_TYPES
from shared.contracts.envelope import Envelope
from shared.contracts.topics import Topic
from shared.kafka import EventRouter, HandlerContext
from shared.kafka.consumer import each_item


def build_router(settings: MetricsSettings) -> EventRouter:
    router = EventRouter()
    rule = SpikeRule(
        baseline_hours=settings.spike_baseline_hours,
        min_count=settings.spike_min_count,
        ratio=settings.spike_ratio,
        z=settings.spike_z,
    )
    window = timedelta(minutes=settings.spike_emit_window_minutes)

    async def on_post_events(batch: list[tuple[HandlerContext, Envelope[Any]]]) -> None:
        # A consumer batch at once: bulk reads and writes, each post's facts refolded once.
        # An event whose per-item phase fails is left out (each_item): the runner retries it alone.
        incoming = each_item(batch, lambda ctx, e: service.Incoming(e, ctx.topic, ctx.partition, ctx.offset))
        if not incoming:
            return
        first = batch[0][0]
        recorded = await service.record_events(
            session=first.session,
            events=[i for _, i in incoming],
            now=first.now,
            spike_rule=rule,
            spike_emit_window=window,
        )
        for spike in recorded.spikes:
            first.emit(spike)

    for model in EVENT_TYPES.values():
        # Metrics' own spike events are not about a post; everything else is.
        if model.topic != Topic.VOLUME_SPIKES:
            router.add_batch(model, on_post_events)
    return router
