"""Logs and events never carry raw personal information.

Posts full of identifiers (TFN, Medicare number, phone, email, street address; author id, handle and name)
go through the four running services on the real broker, with a reply drafted with more of them. Every log
line (the services' structlog JSON on stdout, stdlib logging included) and every message on every topic
(value and headers) is then scanned for each raw value.

One documented exception: ``posts.received.v1`` carries the post's ``text`` (and the ``mentions`` and
``urls`` lifted from it) to policy, which must read it to screen it (docs/security.md). Everything else in
that event, every other event, and metrics' timeline must be free of the values.
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
    "mentioned": "bob_smith_1984",
    "link": "https://example.net/~jane.citizen",
}
RAW_VALUES = [*IDENTIFIERS.values(), *AUTHOR.values()]
TEXT = (
    f"alpha: my TFN is {IDENTIFIERS['tfn']} and Medicare {IDENTIFIERS['medicare']}. Call "
    f"{IDENTIFIERS['phone']} or email {IDENTIFIERS['email']}; I live at {IDENTIFIERS['address']}, Sydney. "
    f"cc @{IDENTIFIERS['mentioned']} {IDENTIFIERS['link']}"
)
#: Where raw text may cross the broker on purpose: (topic, field of the event's data) -> values it may hold.
#: posts.received.v1 hands the post to policy: its text, and the mentions and urls lifted from it.
#: posts.screened.v1's redacted_text masks identifiers but keeps @handles and links (a known gap in policy's
#: redaction, docs/security.md): it is scanned for every other value.
KNOWN_GAP = {IDENTIFIERS["mentioned"], IDENTIFIERS["link"]}
CARRIERS: dict[tuple[str, str], set[str]] = {
    **{(str(Topic.POSTS_RECEIVED), f): set(RAW_VALUES) for f in ("text", "mentions", "urls")},
    (str(Topic.POSTS_SCREENED), "redacted_text"): KNOWN_GAP,
}


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


def leaks_in(topic: str, value: bytes) -> set[str]:
    """The raw values in a message, less those its carrier fields may hold."""
    try:
        event: Any = json.loads(value)
    except ValueError:  # not JSON (a dead letter may hold anything): every byte is scanned
        return {v for v in RAW_VALUES if v in value.decode("utf-8", "replace")}
    data = event.get("data", event)
    found: set[str] = set()
    for (carrier_topic, field), allowed in CARRIERS.items():
        if carrier_topic == topic:
            assert field in data, (topic, sorted(data))
            found |= {v for v in RAW_VALUES if v in json.dumps(data[field]) and v not in allowed}
            data[field] = "<carrier>"
    return found | {v for v in RAW_VALUES if v in json.dumps(event)}


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
    assert '"route": "/v1/posts"' in logs  # the capture did see the services' logs

    log_leaks = [(value, line[:300]) for line in logs.splitlines() for value in RAW_VALUES if value in line]
    event_leaks = []
    for topic, value, headers in events:
        in_headers = " ".join(h.decode("utf-8", "replace") for _, h in headers)
        event_leaks += [
            (topic, v) for v in leaks_in(topic, value) | {v for v in RAW_VALUES if v in in_headers}
        ]
    assert len(events) >= 6, [t for t, _, _ in events]
    assert {str(Topic.POSTS_RECEIVED), str(Topic.POSTS_SCREENED)} <= {t for t, _, _ in events}
    assert not log_leaks, log_leaks[:10]
    # Metrics keeps no free text: the timeline (what supervisors and ops read) has none of the values.
    timeline = await clients["metrics"].get(
        f"/v1/posts/{post_id}/timeline", headers=bearer("ops", subject="o")
    )
    assert timeline.status_code == 200
    assert [v for v in RAW_VALUES if v in timeline.text] == []
    assert not event_leaks, sorted(set(event_leaks))
