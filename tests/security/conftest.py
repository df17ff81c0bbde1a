"""The four services running in-process on one real broker, each on its own database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.ingest.config import IngestSettings
from services.ingest.main import create_app as create_ingest
from services.metrics.config import MetricsSettings
from services.metrics.main import create_app as create_metrics
from services.policy.config import PolicySettings
from services.policy.main import create_app as create_policy
from services.routing.config import RoutingSettings
from services.routing.main import create_app as create_routing


@pytest.fixture
def build_apps(make_settings: Callable[..., Any]) -> Callable[..., dict[str, FastAPI]]:
    def build(**overrides: Any) -> dict[str, FastAPI]:
        policy = create_policy(make_settings(PolicySettings, **overrides))
        return {
            "ingest": create_ingest(make_settings(IngestSettings, **overrides)),
            "policy": policy,
            # Routing asks this policy app in-process before publishing a reply.
            "routing": create_routing(
                make_settings(RoutingSettings, **overrides), policy_transport=httpx.ASGITransport(app=policy)
            ),
            "metrics": create_metrics(make_settings(MetricsSettings, **overrides)),
        }

    return build


@pytest.fixture
async def platform(
    build_apps: Callable[..., dict[str, FastAPI]],
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[tuple[dict[str, FastAPI], dict[str, httpx.AsyncClient]]]:
    """(apps, clients) of the four services, started (migrations, consumers, relays) on the real broker."""
    apps = build_apps()
    async with AsyncExitStack() as stack:
        clients = {name: await stack.enter_async_context(running(app)) for name, app in apps.items()}
        yield apps, clients
