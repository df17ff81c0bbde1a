"""Logs and events never carry raw personal information.

Posts full of identifiers (TFN, Medicare number, phone, email, street address; author id, handle and name)
go through the four running services on the real broker, with a reply drafted with more of them. Every log
line (the services' structlog JSON on stdout, stdlib logging included) and every message on every topic
(value and headers) is then scanned for each raw value.

One documented exception: ``posts.received.v1`` carries the post's ``text`` to policy, which must read it to
screen it (docs/security.md, "What crosses the broker"). Everything else in that event, and every other
event, must be free of the values.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from shared.contracts.topics import Topic
from tests.security.seed import bearer, ingest_and_route, post, setup_directory

pytestmark = pytest.mark.kafka

AUTHOR = {"id": "author-77810293", "handle": "jane_citizen_77", "display_name": "Jane Quinella Citizen"}
IDENTIFIERS = {
    "tfn": "123 456 782",
    "medicare": "2123 45670 1",
    "phone": "0412 345 678",
    "email": "jane.citizen@example.com",
    "address": "42 Wallaby Way",
}
RAW_VALUES = [*IDENTIFIERS.values(), *AUTHOR.values()]
TEXT = (
    f"alpha: my TFN is {IDENTIFIERS['tfn']} and Medicare {IDENTIFIERS['medicare']}. Call "
    f"{IDENTIFIERS['phone']} or email {IDENTIFIERS['email']}; I live at {IDENTIFIERS['address']}, Sydney."
)
#: Where raw text may cross the broker on purpose: (topic, field of the event's data).
RAW_TEXT_CARRIERS = {(str(Topic.POSTS_RECEIVED), "text")}


async def read_every_topic(bootstrap: str) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    out: list[tuple[str, bytes, list[tuple[str, bytes]]]] = []
    try:
        topics = sorted(await consumer.topics())
        assert str(Topic.POSTS_RECEIVED) in topics, topics
        consumer.subscribe(topics)
        quiet = 0
        while quiet < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            got = [m for messages in batch.values() for m in messages]
            quiet = 0 if got else quiet + 1
            out += [(m.topic, m.value or b"", list(m.headers or ())) for m in got]
    finally:
        await consumer.stop()
    return out


def without_carriers(topic: str, value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    fields = [f for t, f in RAW_TEXT_CARRIERS if t == topic]
    if not fields:
        return text
    event: Any = json.loads(text)
    data = event.get("data", event)
    for field in fields:
        assert field in data, (topic, sorted(data))
        data[field] = "<carried on purpose>"
    return json.dumps(event)


async def test_identifiers_reach_no_log_line_and_no_event(
    broker: str,
    platform: tuple[dict[str, FastAPI], dict[str, httpx.AsyncClient]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    _, clients = platform
    await setup_directory(clients["routing"])
    first = post(TEXT, author=AUTHOR)
    post_id, assignment = await ingest_and_route(clients, first)
    # The same identifiers through the batch endpoint, and a near-duplicate (logged differently).
    batch = [post(TEXT + " again", author=AUTHOR), post(TEXT, author=AUTHOR)]
    r = await clients["ingest"].post(
        "/v1/posts:batch", json={"posts": batch}, headers=bearer("agency_system", subject="relay")
    )
    assert r.status_code == 207, r.text
    # A reply drafted with identifiers: policy checks it, routing records (and may publish) it.
    responder = bearer("responder", subject="resp-a", departments=("dept-a",))
    accepted = await clients["routing"].post(f"/v1/assignments/{assignment['id']}/accept", headers=responder)
    assert accepted.status_code == 200, accepted.text
    reply_text = f"Thanks {AUTHOR['display_name']}, we will call {IDENTIFIERS['phone']}."
    reply = await clients["routing"].post(
        f"/v1/assignments/{assignment['id']}/replies", json={"text": reply_text}, headers=responder
    )
    assert reply.status_code in (201, 202, 422), reply.text
    # Bad input quoting identifiers is refused without echoing them into logs.
    bad = await clients["ingest"].post(
        "/v1/posts",
        json={**first, "created_at": IDENTIFIERS["email"]},
        headers=bearer("agency_system", subject="relay"),
    )
    assert bad.status_code == 422
    await asyncio.sleep(1.0)  # the relays publish what the last commits queued

    events = await read_every_topic(broker)
    logs = capfd.readouterr().out
    assert post_id in logs  # the capture did see the services' logs

    log_leaks = [(value, line[:300]) for line in logs.splitlines() for value in RAW_VALUES if value in line]
    event_leaks = []
    for topic, value, headers in events:
        scanned = without_carriers(topic, value) + " ".join(h.decode("utf-8", "replace") for _, h in headers)
        event_leaks += [(topic, v) for v in RAW_VALUES if v in scanned]
    assert len(events) >= 6, [t for t, _, _ in events]
    assert {str(Topic.POSTS_RECEIVED), str(Topic.POSTS_SCREENED)} <= {t for t, _, _ in events}
    assert not log_leaks, log_leaks[:10]
    assert not event_leaks, sorted(set(event_leaks))
