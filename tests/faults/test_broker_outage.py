"""F6: the broker connection is lost. Ingest keeps accepting durably into its outbox, readiness says not
ready, and when the broker is back everything published and consumed resumes: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from services.ingest.config import IngestSettings
from services.ingest.main import create_app as create_ingest
from services.policy.config import PolicySettings
from services.policy.main import create_app as create_policy
from services.policy.models import Screening
from shared.broker import EmbeddedBroker, free_port
from shared.config import KafkaSettings
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.kafka


@pytest.fixture
async def proxied_kafka(kafka_settings: KafkaSettings) -> AsyncIterator[tuple[KafkaSettings, FaultProxy]]:
    """A broker that advertises the proxy's port, so every client connection goes through the proxy."""
    proxy_port = free_port()
    with EmbeddedBroker(advertised_port=proxy_port) as broker:
        proxy = await FaultProxy(
            listen_port=proxy_port, target_host="127.0.0.1", target_port=broker.port
        ).start()
        settings = kafka_settings.model_copy(
            update={"bootstrap_servers": f"127.0.0.1:{proxy_port}", "request_timeout_ms": 5000}
        )
        try:
            yield settings, proxy
        finally:
            await proxy.stop()


def post(i: int) -> dict[str, Any]:
    return {
        "platform": "mastodon",
        "external_id": f"outage-{i}",
        "account": "@agency@social.example",
        "text": f"post number {i}",
        "author": {"id": f"a{i}"},
        "created_at": "2026-11-26T09:00:00Z",
    }


async def wait_until(predicate: Callable[[], Any], within: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {within}s: {what}")


async def test_broker_outage_loses_nothing_and_recovers(
    proxied_kafka: tuple[KafkaSettings, FaultProxy],
    make_settings: Callable[..., Any],
    running: Any,
    token: Any,
    record_fault: Callable[..., Any],
) -> None:
    kafka, proxy = proxied_kafka
    async with AsyncExitStack() as stack:
        ingest = await stack.enter_async_context(
            running(create_ingest(make_settings(IngestSettings, kafka=kafka)))
        )
        policy_app = create_policy(make_settings(PolicySettings, kafka=kafka))
        policy = await stack.enter_async_context(running(policy_app))
        headers = token("agency_system")

        accepted = []
        for i in range(5):
            r = await ingest.post("/v1/posts", json=post(i), headers=headers)
            assert r.status_code == 202
            accepted.append(r.json()["id"])

        async def screened_count() -> int:
            from sqlalchemy import func, select

            async with policy_app.state.runtime.database.transaction() as s:
                return int(await s.scalar(select(func.count()).select_from(Screening)) or 0)

        await wait_until(lambda: _ge(screened_count, 5), 30, "first posts screened")

        proxy.cut()
        # While the broker is away: readiness says so; ingest still answers 202, after a durable commit.
        await wait_until(lambda: _not_ready(ingest), 15, "ingest reports not ready")
        for i in range(5, 25):
            r = await ingest.post("/v1/posts", json=post(i), headers=headers)
            assert r.status_code == 202, r.text
            accepted.append(r.json()["id"])
        assert await screened_count() == 5

        proxy.heal()
        recovery = await wait_until(
            lambda: _ge(screened_count, 25), 60, "all posts screened after the outage"
        )
        await asyncio.sleep(1.0)
        screened = await screened_count()
        record_fault(
            "F6 broker connection cut (fault proxy), ingest keeps accepting",
            posts=len(accepted),
            lost=max(0, len(accepted) - screened),
            duplicates=max(0, screened - len(accepted)),
            recovery_s=recovery,
            note="20 posts accepted (202 after a durable commit) while the broker was unreachable; "
            "counted as policy screenings",
        )
        assert screened == 25  # each exactly once
        await wait_until(lambda: _ready(policy), 30, "policy ready again")
        print(f"\nbroker outage: 20 posts accepted meanwhile, all screened {recovery:.1f}s after healing")


async def _ge(count: Callable[[], Any], n: int) -> bool:
    return bool(await count() >= n)


async def _not_ready(client: Any) -> bool:
    return bool((await client.get("/readyz")).status_code == 503)


async def _ready(client: Any) -> bool:
    return bool((await client.get("/readyz")).status_code == 200)
