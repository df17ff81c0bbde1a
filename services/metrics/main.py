from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.metrics import endpoints, handlers
from services.metrics.config import MetricsSettings
from services.metrics.models import Inbox, Outbox
from shared.runtime import ConsumerSpec, ServiceRuntime, build_app

MIGRATIONS = Path(__file__).parent / "migrations"


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
    return build_app(
        runtime=runtime,
        title="Switchboard metrics",
        description="Consumes every topic and serves post timelines, timeliness and platform health.",
        routers=[endpoints.router],
    )
