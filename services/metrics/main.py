from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from services.metrics import audit, endpoints, handlers, service
from services.metrics.config import MetricsSettings
from services.metrics.models import Inbox, Outbox
from services.metrics.ops import DeadLetterCollector
from shared.logging import get_logger
from shared.runtime import ConsumerSpec, ServiceRuntime, build_app

log = get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


async def _refresh_backlog_gauges(runtime: ServiceRuntime, interval: float) -> None:
    """Keep the backlog gauges current for Prometheus, whether or not anyone calls /v1/backlog."""
    while True:
        try:
            async with runtime.database.transaction() as session:
                await service.refresh_backlog_gauges(session=session, now=datetime.now(UTC))
        except Exception as exc:  # a database hiccup must not end the loop
            log.warning("backlog_gauges_failed", error_type=type(exc).__name__)
        await asyncio.sleep(interval)


async def _refresh_rollups(runtime: ServiceRuntime, interval: float) -> None:
    """Recompute stale day rollups once they settle; until then queries compute those days live, so numbers
    never lag."""
    settle = service.RollupSettle()
    while True:
        try:
            async with runtime.database.transaction() as session:
                done = await service.refresh_rollups(session=session, settle=settle)
        except Exception as exc:
            log.warning("rollup_refresh_failed", error_type=type(exc).__name__)
            done = 0
        if done < 200:  # caught up: wait; else keep going
            await asyncio.sleep(interval)


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    settings = settings or MetricsSettings()
    runtime = ServiceRuntime(
        name="metrics",
        settings=settings,
        migrations_dir=MIGRATIONS,
        outbox_model=Outbox,
        inbox_model=Inbox,
        consumers=[ConsumerSpec(group_id="metrics.timeline", router=handlers.build_router(settings))],
    )
    app = build_app(
        runtime=runtime,
        title="Switchboard metrics",
        description="Consumes every topic and serves post timelines, timeliness and platform health.",
        routers=[endpoints.router, endpoints.ops_router, audit.trail.router()],
    )
    runtime_lifespan = app.router.lifespan_context

    # The dead-letter collector is metrics' own consumer (raw messages of every DLQ topic, by pattern), so it
    # runs beside the runtime's inbox-guarded consumers: started after them, stopped before them.
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_lifespan(app):
            collector: DeadLetterCollector | None = None
            if settings.consumers_enabled and settings.dead_letter_consumer:
                collector = DeadLetterCollector(
                    db=runtime.database,
                    settings=settings.kafka,
                    refresh_ms=settings.dead_letter_topic_refresh_ms,
                    client_id="metrics.dead_letters",
                )
                await collector.start()
            app.state.dead_letter_collector = collector
            tasks = [
                asyncio.create_task(_refresh_backlog_gauges(runtime, settings.backlog_gauge_interval_s)),
                asyncio.create_task(_refresh_rollups(runtime, settings.rollup_interval_s)),
            ]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if collector is not None:
                    await collector.stop()

    app.router.lifespan_context = lifespan
    return app
