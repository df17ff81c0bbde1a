from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.ingest import endpoints
from services.ingest.config import IngestSettings
from services.ingest.models import Inbox, Outbox
from shared.runtime import ServiceRuntime, build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    runtime = ServiceRuntime(
        name="ingest",
        settings=settings,
        migrations_dir=MIGRATIONS,
        outbox_model=Outbox,
        inbox_model=Inbox,
    )
    return build_app(
        runtime=runtime,
        title="Switchboard ingest",
        description="Accepts posts from agency systems and platforms, stores each once, publishes "
        "posts.received.v1.",
        routers=[endpoints.router],
    )
