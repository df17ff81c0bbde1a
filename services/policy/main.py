from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.policy import audit, endpoints, handlers
from services.policy.config import PolicySettings
from services.policy.models import Inbox, Outbox
from shared.runtime import ConsumerSpec, ServiceRuntime, build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: PolicySettings | None = None) -> FastAPI:
    settings = settings or PolicySettings()
    runtime = ServiceRuntime(
        name="policy",
        settings=settings,
        migrations_dir=MIGRATIONS,
        outbox_model=Outbox,
        inbox_model=Inbox,
        consumers=[ConsumerSpec(group_id="policy.screening", router=handlers.router)],
    )
    return build_app(
        runtime=runtime,
        title="Switchboard policy",
        description="Screens inbound posts and checks outbound replies against the active policy pack.",
        routers=[endpoints.router, audit.trail.router()],
    )
