"""Ops over the real broker and real HTTP: status with a stopped service, dead letters collected and replayed,
spikes published, and the projection fed by the metrics consumer itself."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from sqlalchemy import select

from services.metrics.config import MetricsSettings
from services.metrics.main import create_app
from services.metrics.models import DeadLetterReplay, Inbox
from services.policy.config import PolicySettings
from services.policy.main import create_app as create_policy
from shared.contracts import events as ev
from shared.contracts.envelope import Envelope
from shared.contracts.topics import Topic, dead_letter_topic
from shared.db import Database
from shared.kafka import ConsumerRunner, EventRouter, HandlerContext
from shared.kafka.outbox import OutboxWriter
from shared.kafka.producer import ensure_topics, make_producer
from tests.metrics import builders as b

pytestmark = pytest.mark.kafka


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve_http(app: FastAPI, port: int) -> AsyncIterator[uvicorn.Server]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield server
    finally:
        server.should_exit = True
        await task


async def eventually(check, *, within: float = 20.0, every: float = 0.1) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met in {within} s (last: {last!r})")


async def publish(
    kafka, envelopes: list[Envelope[Any]], headers: list[tuple[str, bytes]] | None = None
) -> None:
    producer = make_producer(kafka, client_id="test")
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(
                env.data.topic,
                env.model_dump_json().encode(),
                key=env.subject.encode(),
                headers=headers or [],
            )
    finally:
        await producer.stop()


class TestOpsStatus:
    async def test_running_service_is_up_stopped_service_is_down_and_status_still_answers(
        self, make_settings, running, token, kafka_settings
    ):
        policy_port, closed_port = free_port(), free_port()
        urls = {"policy": f"http://127.0.0.1:{policy_port}", "routing": f"http://127.0.0.1:{closed_port}"}
        metrics = create_app(make_settings(MetricsSettings, service_urls=urls, ops_probe_timeout_s=1.0))
        async with running(metrics) as client:
            async with serve_http(create_policy(make_settings(PolicySettings)), policy_port):
                await publish(kafka_settings, [b.received("p-lag", datetime.now(UTC))])

                async def policy_has_lag_reading():
                    body = (await client.get("/v1/ops/status", headers=token("ops"))).json()
                    groups = {g["group"]: g for g in body["consumer_lag"]}
                    return body if "policy.screening" in groups else None

                body = await eventually(policy_has_lag_reading)
                services = {s["name"]: s for s in body["services"]}
                assert services["policy"]["status"] == "up"
                assert services["policy"]["checks"] == {"database": "ok", "broker": "ok", "consumers": "ok"}
                assert services["routing"]["status"] == "down"
                assert services["routing"]["error"] == "ConnectError"
                assert body["status"] == "degraded"
                lag = {g["group"]: g for g in body["consumer_lag"]}["policy.screening"]
                assert lag["total"] >= 0
                assert {p["topic"] for p in lag["partitions"]} == {"posts.received.v1"}

            # policy stopped: reported down, not a 500
            r = await client.get("/v1/ops/status", headers=token("ops"))
            assert r.status_code == 200
            assert {s["name"]: s["status"] for s in r.json()["services"]} == {
                "policy": "down",
                "routing": "down",
            }

            # metrics' own database unreachable: still a document; the dead-letter count says why it is absent
            runtime = metrics.state.runtime
            real_db = runtime.db
            runtime.db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none", name="down")
            try:
                r = await client.get("/v1/ops/status", headers=token("ops"))
            finally:
                await runtime.db.dispose()
                runtime.db = real_db
            assert r.status_code == 200
            assert r.json()["dead_letters"]["total"] is None
            assert r.json()["dead_letters"]["error"]

            assert (
                await client.get("/v1/ops/status", headers=token("supervisor", departments=("x",)))
            ).status_code == 403


class TestDeadLetters:
    async def test_dead_letter_is_collected_listed_and_replayed_to_a_consumer_that_now_succeeds(
        self, make_settings, running, token, kafka_settings
    ):
        group = "test.flaky"
        dlq = dead_letter_topic(Topic.POSTS_RECEIVED, group)
        await ensure_topics(kafka_settings, {*Topic, dlq}, client_id="test")
        settings = make_settings(MetricsSettings, dead_letter_topic_refresh_ms=500)
        app = create_app(settings)
        handled: list[str] = []
        broken = True

        async def flaky(ctx: HandlerContext, envelope: Envelope[Any]) -> None:
            if broken:
                raise RuntimeError("downstream refused")
            handled.append(envelope.id)

        router = EventRouter()
        router.add(ev.PostReceivedV1, flaky)
        async with running(app) as client:
            runtime = app.state.runtime
            runner = ConsumerRunner(
                group_id=group,
                router=router,
                db=runtime.database,
                inbox_model=Inbox,
                outbox=OutboxWriter(runtime.outbox_model),
                settings=kafka_settings,
                client_id="flaky",
            )
            await runner.start()
            try:
                env = b.received("p-dlq", datetime.now(UTC), text="Call me on 0412 345 678")
                await publish(kafka_settings, [env])

                async def listed():
                    r = await client.get(
                        "/v1/ops/dead-letters", params={"consumer_group": group}, headers=token("ops")
                    )
                    return r.json()["items"]

                (item,) = await eventually(listed)
                assert item["event_id"] == env.id
                assert item["original_topic"] == "posts.received.v1"
                assert item["error"].startswith("RuntimeError")
                assert "0412" not in str(item)
                status = (await client.get("/v1/ops/status", headers=token("ops"))).json()
                assert {"consumer_group": group, "original_topic": "posts.received.v1", "count": 1} in status[
                    "dead_letters"
                ]["by_group"]

                # Not ops: refused. Bad body: problem+json. Unknown id: 404.
                path = f"/v1/ops/dead-letters/{item['id']}/replay"
                sup = token("supervisor", departments=("transport",))
                assert (await client.post(path, json={"reason": "fixed"}, headers=sup)).status_code == 403
                bad = await client.post(path, json={"reason": "", "extra": 1}, headers=token("ops"))
                assert bad.status_code == 422
                assert {e["field"] for e in bad.json()["errors"]} == {"body.reason", "body.extra"}
                missing = await client.post(
                    "/v1/ops/dead-letters/999999/replay", json={"reason": "x"}, headers=token("ops")
                )
                assert missing.status_code == 404

                broken = False
                r = await client.post(
                    path, json={"reason": "downstream fixed"}, headers=token("ops", subject="oncall-1")
                )
                assert r.status_code == 202, r.text
                assert r.json()["topic"] == "posts.received.v1"
                assert r.json()["replay_count"] == 1

                await eventually(lambda: asyncio.sleep(0, result=env.id in handled))
                async with runtime.database.transaction() as session:
                    audit = (await session.scalars(select(DeadLetterReplay))).all()
                    assert [(a.dead_letter_id, a.actor, a.reason) for a in audit] == [
                        (item["id"], "oncall-1", "downstream fixed")
                    ]
                    outcome = await session.scalar(
                        select(Inbox.outcome).where(Inbox.consumer_group == group, Inbox.event_id == env.id)
                    )
                    assert outcome == "handled"
                # metrics' own consumer saw the replayed copy as the duplicate it is.
                timeline = (await client.get("/v1/posts/p-dlq/timeline", headers=token("ops"))).json()
                assert [e["event_id"] for e in timeline["events"]] == [env.id]
            finally:
                await runner.stop()


class TestThroughTheBroker:
    async def test_lifecycle_events_from_all_topics_make_the_numbers_and_a_spike_is_published(
        self, make_settings, running, token, kafka_settings
    ):
        now = datetime.now(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        r0 = hour + timedelta(seconds=1)
        lifecycle = [
            b.lifecycle(
                ev.ReplyPublishedV1,
                "bk",
                r0,
                r0 + timedelta(seconds=600),
                responder_id="r",
                business_seconds_since_received=300,
            ),  # a later event first, on another topic
            b.received("bk", r0),
            b.screened("bk", r0),
            b.lifecycle(ev.AssignmentCreatedV1, "bk", r0, r0, first_response_due_at=r0 + timedelta(hours=1)),
            b.lifecycle(
                ev.AssignmentAcceptedV1,
                "bk",
                r0,
                r0 + timedelta(seconds=60),
                responder_id="r",
                business_seconds_since_received=30,
            ),
        ]
        burst = [b.received(f"s{i}", hour + timedelta(seconds=i), text="#outage") for i in range(20)]
        app = create_app(make_settings(MetricsSettings, spike_min_count=20))
        async with running(app) as client:
            spikes = AIOKafkaConsumer(
                Topic.VOLUME_SPIKES,
                bootstrap_servers=kafka_settings.bootstrap_servers,
                auto_offset_reset="earliest",
            )
            await spikes.start()
            try:
                await publish(kafka_settings, lifecycle + burst)

                async def row():
                    r = await client.get(
                        "/v1/timeliness",
                        params={
                            "from": (hour - timedelta(hours=1)).isoformat(),
                            "to": (hour + timedelta(hours=2)).isoformat(),
                        },
                        headers=token("ops"),
                    )
                    rows = [x for x in r.json()["rows"] if x["group"] == "transport"]
                    done = (
                        rows
                        and rows[0]["time_to_first_response"]["count"]
                        == rows[0]["time_to_assign"]["count"]
                        == 1
                    )
                    return rows[0] if done else None

                got = await eventually(row)
                assert got["time_to_assign"]["p50"] == 60
                assert got["time_to_first_response"]["p99"] == 600
                assert got["business_time_to_first_response"]["p50"] == 300
                assert got["sla_attainment_pct"] == 100.0

                message = await asyncio.wait_for(spikes.getone(), 20)
                assert message.key == b"hashtag:outage"
                assert b'"count":20' in message.value
            finally:
                await spikes.stop()


def consumed(group: str, outcome: str) -> float:
    from prometheus_client import REGISTRY

    return sum(
        s.value
        for family in REGISTRY.collect()
        if family.name == "switchboard_events_consumed"
        for s in family.samples
        if s.name.endswith("_total") and s.labels.get("group") == group and s.labels.get("outcome") == outcome
    )


class TestReplayFromTheBeginning:
    async def test_replaying_every_topic_changes_no_number(
        self, make_settings, running, token, kafka_settings
    ):
        from tests.metrics.test_facts import FRI_1600, weekend_scenario

        events = weekend_scenario("rp1") + weekend_scenario("rp2")
        events += [
            b.received("rp3", FRI_1600),
            b.lifecycle(ev.AssignmentCreatedV1, "rp3", FRI_1600, FRI_1600, department="health"),
        ]
        settings = make_settings(MetricsSettings, dead_letter_consumer=False)
        window = {"from": "2026-11-23T00:00:00Z", "to": "2026-12-07T00:00:00Z"}

        async def numbers(client) -> dict:
            out = {}
            for group_by in ("department", "priority", "label", "responder", "platform"):
                for interval in ("day", "week"):
                    r = await client.get(
                        "/v1/timeliness",
                        params=window | {"group_by": group_by, "interval": interval},
                        headers=token("ops"),
                    )
                    out[(group_by, interval)] = r.json()["rows"]
            backlog = (await client.get("/v1/backlog", headers=token("ops"))).json()["queues"]
            out["backlog"] = [
                {k: v for k, v in q.items() if k != "oldest_waiting_age_seconds"} for q in backlog
            ]
            out["volume"] = (
                await client.get("/v1/volume", params=window | {"kind": "department"}, headers=token("ops"))
            ).json()
            for post in ("rp1", "rp2", "rp3"):
                out[post] = (await client.get(f"/v1/posts/{post}/timeline", headers=token("ops"))).json()
            return out

        await publish(kafka_settings, events)
        async with running(create_app(settings)) as client:

            async def all_recorded():
                # posts sit on different partitions: wait for every one of them
                for post, count in (("rp1", 7), ("rp2", 7), ("rp3", 2)):
                    r = await client.get(f"/v1/posts/{post}/timeline", headers=token("ops"))
                    if r.status_code != 200 or len(r.json()["events"]) != count:
                        return False
                return True

            await eventually(all_recorded)
            before = await numbers(client)
        assert before[("department", "day")]

        duplicates = consumed("metrics.timeline", "duplicate")
        replay = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"replay_from_beginning": True})}
        )
        async with running(create_app(replay)) as client:

            async def replayed():
                return consumed("metrics.timeline", "duplicate") - duplicates >= len(events)

            await eventually(replayed)
            after = await numbers(client)
        assert after == before
