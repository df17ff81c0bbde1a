from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.ingest import endpoints
from services.ingest.config import IngestSettings
from services.ingest.group_commit import GroupCommitter
from services.ingest.hot_routes import HotPostRoutes
from services.ingest.models import Inbox, Outbox
from services.ingest.normalise.language import warm_up
from shared.http import add_inner_middleware
from shared.runtime import ServiceRuntime, build_app, settle_garbage_collector

MIGRATIONS = Path(__file__).parent / "migrations"
HOT_PATHS = frozenset({"/v1/posts", "/v1/posts:batch"})


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    runtime = ServiceRuntime(
        name="ingest",
        settings=settings,
        migrations_dir=MIGRATIONS,
        outbox_model=Outbox,
        inbox_model=Inbox,
    )
    app = build_app(
        runtime=runtime,
        title="Switchboard ingest",
        description="Accepts posts from agency systems and platform webhooks, normalises each into one "
        "canonical post, stores it once and publishes posts.received.v1.",
        routers=[endpoints.router, endpoints.webhooks],
    )
    # The two posting routes' successful requests skip FastAPI's routing and dependency solving.
    add_inner_middleware(
        app,
        HotPostRoutes,
        routes=[r for r in endpoints.router.routes if isinstance(r, APIRoute) and r.path in HOT_PATHS],
    )
    runtime_lifespan = app.router.lifespan_context

    # The group committer needs the started database and must stop before it: wrap the runtime's lifespan.
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_lifespan(app):
            warm_up()
            committer = GroupCommitter(
                db=runtime.database,
                window=timedelta(seconds=settings.near_duplicate_window_seconds),
                max_posts=settings.group_commit_max_posts,
                writers=settings.group_commit_writers,
                linger=settings.group_commit_linger_ms / 1000,
            )
            committer.start()
            app.state.committer = committer
            # The language model and the committer were built after the runtime's start: freeze them too.
            settle_garbage_collector(app)
            try:
                yield
            finally:
                await committer.stop()

    app.router.lifespan_context = lifespan
    return app
