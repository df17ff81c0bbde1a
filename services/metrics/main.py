from __future__ import annotations

import asyncio
import contextlib
import time
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
    never lag. Each cell in three steps: which cells are due (a short write transaction), the day's posts
    read and summarised in a read transaction (SQLite: the reader's own connection, so the consumer's
    writes never wait behind a long read), the summary stored and the marks it saw cleared (a short write
    transaction; a mark made meanwhile keeps the cell dirty)."""
    db = runtime.database
    settle = service.RollupSettle()
    while True:
        done = 0
        try:
            now = time.monotonic()
            async with db.transaction() as session:
                cells = await service.due_rollup_cells(session=session, settle=settle, now=now)
            for cell in cells:
                started = time.perf_counter()
                async with db.read_transaction() as session:
                    summary = await service.rollup_summary(session=session, cell=cell)
                async with db.transaction() as session:
                    await service.store_rollup(session=session, cell=cell, summary=summary)
                settle.recomputed(cell.department, cell.day, time.perf_counter() - started, now)
                done += 1
        except Exception as exc:
            log.warning("rollup_refresh_failed", error_type=type(exc).__name__)
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
