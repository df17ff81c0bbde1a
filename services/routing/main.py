from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.routing import audit, endpoints, handlers, service
from services.routing.clients import LoggingPublisher, PolicyClient, Publisher
from services.routing.config import RoutingSettings
from services.routing.models import Inbox, Outbox
from shared.logging import get_logger
from shared.runtime import ConsumerSpec, ServiceRuntime, build_app

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def routing_config(settings: RoutingSettings) -> service.RoutingConfig:
    return service.RoutingConfig(
        default_department=settings.default_department,
        crisis_department=settings.crisis_department,
        offer_timeout_seconds=settings.offer_timeout_seconds,
        drain_batch_size=settings.drain_batch_size,
        timer_batch_size=settings.timer_batch_size,
    )


async def run_timers(runtime: ServiceRuntime, config: service.RoutingConfig, interval: float) -> None:
    """Fire due offer and SLA timers forever. Several replicas may run this: rows are claimed with SKIP LOCKED
    and flagged in the same transaction as their events, so each timer fires once."""
    while True:
        try:
            async with runtime.database.transaction() as session:
                events = await service.fire_timers(session=session, config=config, now=datetime.now(UTC))
                for envelope in events:
                    runtime.outbox.add(session, envelope)
                audit.record_events(session, events, actor=audit.TIMER_ACTOR)
            if events:
                log.info("timers_fired", events=len(events))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the loop must outlive a database hiccup; the next tick retries
            log.warning("timers_failed", error_type=type(exc).__name__, error=str(exc)[:300])
        await asyncio.sleep(interval)


def create_app(
    settings: RoutingSettings | None = None,
    *,
    policy_transport: httpx.AsyncBaseTransport | None = None,
    publisher: Publisher | None = None,
) -> FastAPI:
    """``policy_transport`` lets tests reach a policy app in-process (httpx.ASGITransport)."""
    settings = settings or RoutingSettings()
    config = routing_config(settings)
    runtime = ServiceRuntime(
        name="routing",
        settings=settings,
        migrations_dir=MIGRATIONS,
        outbox_model=Outbox,
        inbox_model=Inbox,
        consumers=[ConsumerSpec(group_id="routing.assignment", router=handlers.build_router(config))],
    )
    app = build_app(
        runtime=runtime,
        title="Switchboard routing",
        description="Assigns screened posts to department queues and responders; serves responder "
        "front-ends.",
        routers=[endpoints.router, audit.trail.router()],
    )
    app.state.routing_config = config
    app.state.publisher = publisher or LoggingPublisher()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.policy_client = PolicyClient(
            base_url=settings.policy_url,
            timeout=settings.policy_timeout_seconds,
            attempts=settings.policy_attempts,
            backoff_seconds=settings.policy_retry_backoff_ms / 1000,
            transport=policy_transport,
        )
        async with inner(app):
            timers = asyncio.create_task(run_timers(runtime, config, settings.timer_interval_ms / 1000))
            try:
                yield
            finally:
                timers.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timers
                await app.state.policy_client.aclose()

    app.router.lifespan_context = lifespan
    return app
