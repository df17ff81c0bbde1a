"""Ingest through its HTTP API, with the real broker and database (SQLite, or PostgreSQL when
TEST_DATABASE_URL is set). The platforms are the outside world: their deliveries are fixtures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from services.ingest import signatures
from services.ingest.config import IngestSettings
from services.ingest.main import create_app
from shared.contracts.topics import Topic
from tests.ingest.conftest import fixture_bytes

pytestmark = pytest.mark.kafka

FB_SECRET = "facebook-app-secret"
X_SECRET = "x-consumer-secret"
POST = {
    "platform": "webform",
    "external_id": "sub-1",
    "account": "contact-us",
    "text": "The footpath on King St is broken",
    "author": {"id": "resident@example.net", "handle": "resident@example.net", "display_name": "Res Ident"},
    "created_at": "2026-11-26T09:00:00+11:00",
    "visibility": "private",
}


@pytest.fixture
async def ingest(
    make_settings: Callable[..., IngestSettings],
    running: Callable[[Any], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[tuple[httpx.AsyncClient, IngestSettings]]:
    settings = make_settings(
        IngestSettings,
        webhook_secrets={"facebook": {"555000111": FB_SECRET}, "x": {"*": X_SECRET}},
        meta_verify_tokens={"*": "verify-me"},
        near_duplicate_window_seconds=600,
    )
    async with running(create_app(settings)) as client:
        yield client, settings


async def received_events(
    bootstrap: str, post_ids: set[str], within: float = 15.0
) -> dict[str, dict[str, Any]]:
    """The posts.received.v1 events of ``post_ids``, read from the broker."""
    consumer = AIOKafkaConsumer(
        Topic.POSTS_RECEIVED, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[str, dict[str, Any]] = {}
    try:
        deadline = asyncio.get_running_loop().time() + within
        while set(found) != post_ids and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    data = json.loads(record.value)["data"]
                    if data["post_id"] in post_ids:
                        found[data["post_id"]] = data
    finally:
        await consumer.stop()
    return found


class TestSinglePost:
    async def test_accepted_then_exact_duplicate_then_near_duplicate_flagged_in_the_event(
        self,
        ingest: tuple[httpx.AsyncClient, IngestSettings],
        token: Callable[..., dict[str, str]],
        broker: str,
    ) -> None:
        client, _ = ingest
        headers = token("agency_system")
        first = await client.post("/v1/posts", json=POST, headers=headers)
        assert first.status_code == 202, first.text
        assert first.json() == {"id": first.json()["id"], "duplicate": False}
        again = await client.post("/v1/posts", json=POST, headers=headers)
        assert again.json() == {"id": first.json()["id"], "duplicate": True}
        flood = await client.post(
            "/v1/posts",
            json={**POST, "external_id": "sub-2", "text": "the footpath on  KING st is broken\u200b"},
            headers=headers,
        )
        assert flood.status_code == 202
        assert flood.json()["duplicate"] is False
        assert flood.json()["duplicate_of"] == first.json()["id"]

        events = await received_events(broker, {first.json()["id"], flood.json()["id"]})
        original, copy = events[first.json()["id"]], events[flood.json()["id"]]
        assert original["duplicate_of"] is None
        assert copy["duplicate_of"] == first.json()["id"]
        assert original["language"] == "en"
        assert original["text"] == POST["text"]
        for event in events.values():
            assert "resident@example.net" not in json.dumps(event)
            assert "Res Ident" not in json.dumps(event)

    async def test_read_back_with_raw_author_only_for_allowed_roles(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings], token: Callable[..., dict[str, str]]
    ) -> None:
        client, _ = ingest
        created = await client.post("/v1/posts", json=POST, headers=token("agency_system"))
        post_id = created.json()["id"]
        as_supervisor = await client.get(f"/v1/posts/{post_id}", headers=token("admin"))
        assert as_supervisor.status_code == 200
        body = as_supervisor.json()
        assert body["author"] == {
            "id": "resident@example.net",
            "handle": "resident@example.net",
            "display_name": "Res Ident",
        }
        assert body["text"] == POST["text"]
        assert body["visibility"] == "private"
        assert body["created_at"].startswith("2026-11-25T22:00:00")
        as_ops = await client.get(f"/v1/posts/{post_id}", headers=token("ops"))
        assert as_ops.status_code == 200
        assert as_ops.json()["author"] is None
        assert as_ops.json()["author_ref"] == body["author_ref"]
        missing = await client.get("/v1/posts/01900000-0000-7000-8000-000000000000", headers=token("ops"))
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"

    async def test_concurrent_requests_share_commits_and_the_same_post_is_stored_once(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings], token: Callable[..., dict[str, str]]
    ) -> None:
        client, _ = ingest
        headers = token("agency_system")
        distinct = [
            client.post(
                "/v1/posts", json={**POST, "external_id": f"c{i}", "author": {"id": f"u{i}"}}, headers=headers
            )
            for i in range(60)
        ]
        same = [
            client.post("/v1/posts", json={**POST, "external_id": "same"}, headers=headers) for _ in range(20)
        ]
        responses = await asyncio.gather(*distinct, *same)
        assert all(r.status_code == 202 for r in responses), [
            r.text for r in responses if r.status_code != 202
        ]
        assert len({r.json()["id"] for r in responses[:60]}) == 60
        same_bodies = [r.json() for r in responses[60:]]
        assert len({b["id"] for b in same_bodies}) == 1
        assert sum(not b["duplicate"] for b in same_bodies) == 1


class TestBadInput:
    async def test_problems_name_the_field_and_nothing_is_half_stored(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings], token: Callable[..., dict[str, str]]
    ) -> None:
        client, _ = ingest
        headers = token("agency_system")
        too_long = await client.post("/v1/posts", json={**POST, "text": "a" * 40_001}, headers=headers)
        assert too_long.status_code == 422
        assert too_long.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in too_long.json()["errors"]] == ["body.text"]

        no_author = await client.post(
            "/v1/posts", json={k: v for k, v in POST.items() if k != "author"}, headers=headers
        )
        assert no_author.status_code == 422
        assert no_author.json()["errors"][0]["field"] == "body.author"

        invisible = await client.post("/v1/posts", json={**POST, "text": "\u200b\u2060"}, headers=headers)
        assert invisible.status_code == 422
        assert invisible.json()["errors"][0]["field"] == "body.text"

        malformed = await client.post(
            "/v1/posts", content=b'{"platform": ', headers={**headers, "content-type": "application/json"}
        )
        assert malformed.status_code == 422

        huge = await client.post(
            "/v1/posts",
            content=b"x" * (1_048_576 + 1),
            headers={**headers, "content-type": "application/json"},
        )
        assert huge.status_code == 413

        unknown = await client.post("/v1/webhooks/myspace", content=b"{}", headers=headers)
        assert unknown.status_code == 404

        # None of the rejected requests stored anything: the valid post is new.
        ok = await client.post("/v1/posts", json=POST, headers=headers)
        assert ok.json()["duplicate"] is False

    async def test_needs_the_agency_system_role(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings], token: Callable[..., dict[str, str]]
    ) -> None:
        client, _ = ingest
        assert (await client.post("/v1/posts", json=POST)).status_code == 401
        assert (await client.post("/v1/posts", json=POST, headers=token("responder"))).status_code == 403


class TestBatch:
    async def test_one_bad_item_never_rejects_the_others(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings], token: Callable[..., dict[str, str]]
    ) -> None:
        client, _ = ingest
        headers = token("agency_system")
        posts = [
            POST,
            {**POST, "external_id": "sub-long", "text": "a" * 40_001},
            {**POST, "external_id": "sub-noauthor", "author": None},
            POST,
            {
                **POST,
                "external_id": "sub-3",
                "author": {"id": "someone-else"},
                "text": "Another matter entirely",
            },
            "not a post at all",
        ]
        response = await client.post("/v1/posts:batch", json={"posts": posts}, headers=headers)
        assert response.status_code == 207, response.text
        body = response.json()
        assert [i["status"] for i in body["items"]] == [
            "accepted",
            "rejected",
            "rejected",
            "duplicate",
            "accepted",
            "rejected",
        ]
        assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 3)
        assert body["items"][5]["problem"]["errors"][0]["field"] == "body.posts.5"
        assert body["items"][1]["problem"]["errors"][0]["field"] == "body.posts.1.text"
        assert body["items"][2]["problem"]["errors"][0]["field"] == "body.posts.2.author"
        assert body["items"][3]["id"] == body["items"][0]["id"]

        # The rejected items left nothing: fixed, they are accepted as new posts.
        fixed = await client.post(
            "/v1/posts:batch",
            json={
                "posts": [
                    {**POST, "external_id": "sub-long"},
                    {**POST, "external_id": "sub-noauthor", "text": "x y z"},
                ]
            },
            headers=headers,
        )
        assert [i["status"] for i in fixed.json()["items"]] == ["accepted", "accepted"]

    async def test_more_than_500_items_is_rejected_whole(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings], token: Callable[..., dict[str, str]]
    ) -> None:
        client, _ = ingest
        response = await client.post(
            "/v1/posts:batch", json={"posts": [POST] * 501}, headers=token("agency_system")
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.posts"


class TestWebhooks:
    async def test_meta_signature_is_verified_both_ways(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings]
    ) -> None:
        client, _ = ingest
        body = fixture_bytes("facebook_feed.json")
        bad = await client.post(
            "/v1/webhooks/facebook",
            content=body,
            headers={"x-hub-signature-256": signatures.meta_signature(b"wrong", body)},
        )
        assert bad.status_code == 401
        unsigned = await client.post("/v1/webhooks/facebook", content=body)
        assert unsigned.status_code == 401
        good = await client.post(
            "/v1/webhooks/facebook",
            content=body,
            headers={"x-hub-signature-256": signatures.meta_signature(FB_SECRET.encode(), body)},
        )
        assert good.status_code == 200, good.text
        # accepted, not duplicate: the 401s stored nothing.
        assert [i["status"] for i in good.json()["items"]] == ["accepted", "accepted", "skipped"]
        assert good.json()["items"][2]["reason"] == "feed item 'reaction' is not a post"

    async def test_x_signature_is_verified_both_ways(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings]
    ) -> None:
        client, _ = ingest
        body = fixture_bytes("x_account_activity.json")
        bad = await client.post(
            "/v1/webhooks/x",
            content=body,
            headers={"x-twitter-webhooks-signature": signatures.x_signature(b"no", body)},
        )
        assert bad.status_code == 401
        good = await client.post(
            "/v1/webhooks/x",
            content=body,
            headers={"x-twitter-webhooks-signature": signatures.x_signature(X_SECRET.encode(), body)},
        )
        assert good.status_code == 200
        assert [i["status"] for i in good.json()["items"]] == ["accepted", "skipped"]

    async def test_subscription_checks(self, ingest: tuple[httpx.AsyncClient, IngestSettings]) -> None:
        client, _ = ingest
        crc = await client.get("/v1/webhooks/x", params={"crc_token": "abc"})
        assert crc.json() == {"response_token": signatures.x_crc_response(X_SECRET.encode(), "abc")}
        params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
        hub = await client.get("/v1/webhooks/facebook", params=params)
        assert hub.status_code == 200
        assert hub.text == "1158201444"
        wrong = await client.get("/v1/webhooks/instagram", params={**params, "hub.verify_token": "nope"})
        assert wrong.status_code == 403

    async def test_every_platform_delivery_is_stored(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings], token: Callable[..., dict[str, str]]
    ) -> None:
        client, _ = ingest
        bearer = token("agency_system")
        unsigned = [
            ("mastodon", "mastodon_notification.json", {"account": "@council@gov.example"}, 1),
            ("bluesky", "bluesky_jetstream.json", {"account": "council.gov.example"}, 1),
            ("reddit", "reddit_listing.json", {}, 2),
            ("youtube", "youtube_comment_thread.json", {}, 2),
            ("email", "email_reply.eml", {}, 1),
            ("webform", "webform.json", {}, 1),
            ("x", "x_v2.json", {"account": "@TransportNSW"}, 1),
        ]
        for platform, name, params, accepted in unsigned:
            body = fixture_bytes(name)
            headers = dict(bearer)
            if platform == "x":
                headers = {"x-twitter-webhooks-signature": signatures.x_signature(X_SECRET.encode(), body)}
            response = await client.post(
                f"/v1/webhooks/{platform}", content=body, params=params, headers=headers
            )
            assert response.status_code == 200, (platform, response.text)
            assert response.json()["accepted"] == accepted, (platform, response.json())
            first = next(i for i in response.json()["items"] if i["status"] == "accepted")
            stored = await client.get(f"/v1/posts/{first['id']}", headers=token("ops"))
            assert stored.json()["platform"] == platform
        assert (
            await client.post("/v1/webhooks/mastodon", content=b"{}", params={"account": "a"})
        ).status_code == 401

    async def test_wrong_shape_is_422_with_the_path(
        self, ingest: tuple[httpx.AsyncClient, IngestSettings], token: Callable[..., dict[str, str]]
    ) -> None:
        client, _ = ingest
        response = await client.post(
            "/v1/webhooks/youtube",
            content=orjson.dumps({"id": "t", "snippet": {}}),
            headers=token("agency_system"),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.snippet.topLevelComment"
