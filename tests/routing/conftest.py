"""Helpers for routing's component tests: the real routing app, the real broker and database.

Screened posts are produced onto posts.screened.v1 exactly as policy would (the event contract is the
interface); what routing emits is read back from the broker with a consumer of our own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.routing.config import RoutingSettings
from services.routing.main import create_app
from shared.contracts import PostReceivedV1, PostScreenedV1, new_event
from shared.contracts.envelope import EventModel
from shared.contracts.topics import Topic

ALL_DAYS = {d: [["00:00", "23:59"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def screened(post_id: str | None = None, **overrides: Any) -> PostScreenedV1:
    values: dict[str, Any] = {
        "post_id": post_id or str(uuid.uuid4()),
        "screening_id": str(uuid.uuid4()),
        "policy_version": "test",
        "labels": [],
        "risk": "low",
        "priority": 3,
        "redacted_text": "When is the next bus?",
        "platform": "x",
        "account": "@TransportAgency",
        "author_ref": "author-" + uuid.uuid4().hex[:8],
        "screened_at": datetime.now(UTC),
    }
    values.update(overrides)
    return PostScreenedV1(**values)


class Bus:
    """Produces events the way other services do and reads back what routing published."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self.consumer = AIOKafkaConsumer(
            Topic.ASSIGNMENTS,
            Topic.REPLIES,
            Topic.SLA,
            bootstrap_servers=bootstrap,
            group_id=f"test-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
            # Tansu answers a JoinGroup after half the session timeout (aiokafka's default: 10 s).
            session_timeout_ms=2000,
            heartbeat_interval_ms=400,
        )
        self.seen: list[dict[str, Any]] = []

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.producer.stop()
        await self.consumer.stop()

    async def send(self, data: EventModel) -> None:
        env = new_event(data, source="/tests")
        await self.producer.send_and_wait(
            data.topic,
            key=env.subject.encode(),
            value=env.model_dump_json().encode(),
            headers=[("ce_type", env.type.encode())],
        )

    async def received(self, post: PostScreenedV1, *, received_at: datetime | None = None) -> None:
        await self.send(
            PostReceivedV1(
                post_id=post.post_id,
                platform=post.platform,
                external_id=post.post_id,
                account=post.account,
                author_ref=post.author_ref,
                text="x",
                created_at=received_at or datetime.now(UTC),
                received_at=received_at or datetime.now(UTC),
            )
        )

    async def events(
        self, predicate: Callable[[list[dict[str, Any]]], bool], *, within: float = 20.0
    ) -> list[dict[str, Any]]:
        import json

        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            if predicate(self.seen):
                return self.seen
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self.seen.extend(json.loads(r.value) for r in records if r.value)
        raise AssertionError(
            f"events never matched; saw {[(e['type'], e['data'].get('post_id')) for e in self.seen]}"
        )

    def of(self, post_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.seen
            if e["data"].get("post_id") == post_id and (kind is None or e["type"].endswith(f".{kind}.v1"))
        ]


@pytest.fixture
async def bus(broker: str) -> AsyncIterator[Bus]:
    b = Bus(broker)
    await b.start()
    yield b
    await b.stop()


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within: float = 20.0, what: str = "condition"
) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} never held; last: {last}")


async def assignment_of(
    client: httpx.AsyncClient, post_id: str, headers: dict[str, str], status: str | None = None
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await client.get("/v1/assignments", params={"post_id": post_id}, headers=headers)
        assert r.status_code == 200, r.text
        rows = r.json()
        if rows and (status is None or rows[0]["status"] == status):
            return rows[0]  # type: ignore[no-any-return]
        return None

    return await eventually(check, what=f"assignment of {post_id} with status {status}")  # type: ignore[no-any-return]


async def setup_department(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    dept: str = "transport",
    *,
    hours: dict[str, Any] | None = None,
    sla_policy: str = "standard",
    tz: str = "Australia/Sydney",
    state: str | None = "NSW",
) -> None:
    r = await client.put(
        f"/v1/departments/{dept}",
        json={
            "name": dept.title(),
            "timezone": tz,
            "hours": hours or ALL_DAYS,
            "state": state,
            "sla_policy": sla_policy,
        },
        headers=admin,
    )
    assert r.status_code == 200, r.text


async def add_responder(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    rid: str,
    *,
    depts: tuple[str, ...] = ("transport",),
    capacity: int = 2,
    status: str = "available",
    skills: tuple[str, ...] = (),
    languages: tuple[str, ...] = (),
) -> None:
    r = await client.put(
        f"/v1/responders/{rid}",
        json={
            "name": rid,
            "departments": list(depts),
            "capacity": capacity,
            "status": status,
            "skills": list(skills),
            "languages": list(languages),
        },
        headers=admin,
    )
    assert r.status_code == 200, r.text


@pytest.fixture
def routing(make_settings: Callable[..., Any], running: Callable[..., Any]) -> Callable[..., Any]:
    @asynccontextmanager
    async def start(
        policy_transport: httpx.AsyncBaseTransport | None = None, publisher: Any = None, **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        values = {"default_department": "transport", "timer_interval_ms": 100, **overrides}
        app = create_app(
            make_settings(RoutingSettings, **values), policy_transport=policy_transport, publisher=publisher
        )
        async with running(app) as client:
            yield client

    return start


def who(token: Callable[..., dict[str, str]], rid: str, dept: str = "transport") -> dict[str, str]:
    return token("responder", departments=(dept,), subject=rid)
