"""One post through all four services in one process each's app, over the real broker and database."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from aiokafka import AIOKafkaConsumer

from services.ingest.config import IngestSettings
from services.ingest.main import create_app as create_ingest
from services.metrics.config import MetricsSettings
from services.metrics.main import create_app as create_metrics
from services.policy.config import PolicySettings
from services.policy.main import create_app as create_policy
from services.routing.config import RoutingSettings
from services.routing.main import create_app as create_routing
from shared.contracts.topics import Topic

pytestmark = pytest.mark.kafka

POST = {
    "platform": "x",
    "external_id": "1850000000000000001",
    "account": "@TransportAgency",
    "text": "Is the M4 closed tonight? Reach me on 0412 345 678",
    "author": {"id": "2244994945", "handle": "someone"},
    "created_at": "2026-11-26T09:00:00+11:00",
}


async def wait_for_timeline(client, post_id, headers, types, within=15.0):
    deadline = asyncio.get_running_loop().time() + within
    body = None
    while asyncio.get_running_loop().time() < deadline:
        response = await client.get(f"/v1/posts/{post_id}/timeline", headers=headers)
        if response.status_code == 200:
            body = response.json()
            if [e["type"] for e in body["events"]] == types:
                return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"timeline did not reach {types}: {body}")


async def test_post_is_received_screened_assigned_and_in_the_timeline(broker, make_settings, running, token):
    async with AsyncExitStack() as stack:
        ingest = await stack.enter_async_context(running(create_ingest(make_settings(IngestSettings))))
        await stack.enter_async_context(running(create_policy(make_settings(PolicySettings))))
        await stack.enter_async_context(running(create_routing(make_settings(RoutingSettings))))
        metrics = await stack.enter_async_context(running(create_metrics(make_settings(MetricsSettings))))

        response = await ingest.post(
            "/v1/posts", json=POST, headers={**token("agency_system"), "X-Correlation-ID": "corr-walking-1"}
        )
        assert response.status_code == 202, response.text
        post_id = response.json()["id"]
        assert response.json()["duplicate"] is False

        again = await ingest.post("/v1/posts", json=POST, headers=token("agency_system"))
        assert again.status_code == 202
        assert again.json() == {"id": post_id, "duplicate": True}

        body = await wait_for_timeline(
            metrics,
            post_id,
            token("ops"),
            [
                "switchboard.post.received.v1",
                "switchboard.post.screened.v1",
                "switchboard.assignment.created.v1",
            ],
        )
        screened = body["events"][1]["attributes"]
        assert screened["labels"] == ["pii:phone"]
        assigned = body["events"][2]["attributes"]
        assert assigned["department"] == "general"
        assert assigned["status"] == "waiting"
        # The caller's correlation id travelled with the post through policy and routing.
        consumer = AIOKafkaConsumer(
            Topic.ASSIGNMENTS,
            bootstrap_servers=broker,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=3000)
        finally:
            await consumer.stop()
        headers = [dict(r.headers) for records in batch.values() for r in records]
        assert headers
        assert headers[0]["correlation_id"] == b"corr-walking-1"
        # Metrics keeps no free text, and no event carries the raw author.
        for event in body["events"]:
            assert "text" not in event["attributes"]
            assert "2244994945" not in str(event["attributes"])
            assert "someone" not in str(event["attributes"])
