from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.routing import endpoints, handlers
from services.routing.config import RoutingSettings
from services.routing.models import Inbox, Outbox
from shared.runtime import ConsumerSpec, ServiceRuntime, build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    settings = settings or RoutingSettings()
    runtime = ServiceRuntime(
        name="routing",
        settings=settings,
        migrations_dir=MIGRATIONS,
        outbox_model=Outbox,
        inbox_model=Inbox,
        consumers=[ConsumerSpec(group_id="routing.assignment", router=handlers.build_router(settings))],
    )
    return build_app(
        runtime=runtime,
        title="Switchboard routing",
        description="Assigns screened posts to department queues and responders; serves responder "
        "front-ends.",
        routers=[endpoints.router],
    )
