"""Replies: policy's verdict decides (allow -> published, review -> supervisor approval, block -> 422 with
findings) and an unreachable policy publishes nothing.

The policy service is reached over HTTP. Here a transport stands in for it AT THE HTTP BOUNDARY, answering
exactly as the /v1/checks contract says; the last test runs the real policy app in-process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from services.policy.config import PolicySettings
from services.policy.main import create_app as create_policy
from services.routing.models import Reply
from tests.routing.conftest import Bus, add_responder, assignment_of, screened, setup_department, who

pytestmark = pytest.mark.kafka


class RecordingPublisher:
    """A Publisher (the platform side, outside our system) that remembers what it was handed."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, reply: Reply, *, platform: str, post_id: str) -> None:
        assert platform
        assert post_id
        self.published.append(reply.id)


def contract_policy(calls: list[dict[str, Any]], *, fail_first: int = 0) -> httpx.MockTransport:
    """Answers POST /v1/checks per the contract; the verdict is chosen by a word in the reply."""

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/checks"
        body = json.loads(request.content)
        calls.append({"body": body, "auth": request.headers.get("authorization")})
        if len(calls) <= fail_first:
            return httpx.Response(503, json={"title": "Service Unavailable", "status": 503})
        text = body["text"]
        decision = "block" if "idiot" in text else "review" if "refund" in text else "allow"
        findings = []
        if decision != "allow":
            findings.append(
                {
                    "rule_id": "TONE-01" if decision == "block" else "FIN-02",
                    "severity": "high" if decision == "block" else "medium",
                    "message": "Insulting language"
                    if decision == "block"
                    else "Refund promises need approval",
                    "span": [0, 5],
                    "suggestion": "Rephrase politely",
                    "source": "house-rules",
                }
            )
        return httpx.Response(
            200,
            json={
                "check_id": str(uuid.uuid4()),
                "decision": decision,
                "findings": findings,
                "policy_version": "p-7",
            },
        )

    return httpx.MockTransport(handle)


def unreachable() -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.MockTransport(handle)


async def assigned_post(
    client: httpx.AsyncClient, bus: Bus, token: Callable[..., dict[str, str]]
) -> dict[str, Any]:
    admin = token("admin")
    await setup_department(client, admin)
    await add_responder(client, admin, "r1", capacity=5)
    post = screened(visibility="private", platform="facebook")
    await bus.send(post)
    a = await assignment_of(client, post.post_id, admin, "offered")
    assert (
        await client.post(f"/v1/assignments/{a['id']}/accept", headers=who(token, "r1"))
    ).status_code == 200
    return a


class TestPolicyVerdicts:
    async def test_allow_review_block_and_approval(self, routing, bus: Bus, token) -> None:
        calls: list[dict[str, Any]] = []
        publisher = RecordingPublisher()
        async with routing(policy_transport=contract_policy(calls), publisher=publisher) as client:
            a = await assigned_post(client, bus, token)
            me = who(token, "r1")
            url = f"/v1/assignments/{a['id']}/replies"

            r = await client.post(url, json={"text": "The M4 reopens at 6pm."}, headers=me)
            assert r.status_code == 201, r.text
            assert r.json()["status"] == "published"
            assert publisher.published == [r.json()["id"]]
            sent = calls[0]
            assert sent["body"] == {
                "text": "The M4 reopens at 6pm.",
                "platform": "facebook",
                "visibility": "private",
                "media": [],
                "in_reply_to_post_id": a["post_id"],
                "department": "transport",
            }
            assert sent["auth"] == me["Authorization"]  # the caller's token is forwarded
            row = await assignment_of(client, a["post_id"], token("admin"))
            assert row["fr_due_at"] is None  # first response met: that clock stopped

            blocked = await client.post(url, json={"text": "you idiot"}, headers=me)
            assert blocked.status_code == 422
            problem = blocked.json()
            assert problem["findings"][0]["rule_id"] == "TONE-01"
            assert problem["findings"][0]["suggestion"] == "Rephrase politely"
            assert problem["errors"][0]["field"] == "body.text"
            assert len(publisher.published) == 1

            review = await client.post(url, json={"text": "We will refund you"}, headers=me)
            assert review.status_code == 202, review.text
            approval_id = review.json()["approval_id"]
            assert review.json()["status"] == "pending_approval"
            boss = token("supervisor", departments=("transport",), subject="boss")
            outsider = token("supervisor", departments=("health",), subject="other")
            listed = (await client.get("/v1/approvals", headers=boss)).json()
            assert [x["id"] for x in listed] == [approval_id]
            assert (await client.get("/v1/approvals", headers=outsider)).json() == []
            assert (await client.get("/v1/approvals", headers=me)).status_code == 403
            no_reason = await client.post(f"/v1/approvals/{approval_id}/approve", json={}, headers=boss)
            assert no_reason.status_code == 422
            ok = await client.post(
                f"/v1/approvals/{approval_id}/approve", json={"reason": "refund confirmed"}, headers=boss
            )
            assert ok.status_code == 200, ok.text
            assert ok.json()["status"] == "approved"
            assert len(publisher.published) == 2
            twice = await client.post(
                f"/v1/approvals/{approval_id}/reject", json={"reason": "late"}, headers=boss
            )
            assert twice.status_code == 409

            await bus.events(lambda _: len(bus.of(a["post_id"], "published")) == 2)
            published = bus.of(a["post_id"], "published")
            assert [e["data"]["first_response"] for e in published] == [True, False]
            assert published[0]["data"]["policy_version"] == "p-7"
            assert bus.of(a["post_id"], "approval_requested")
            decided = bus.of(a["post_id"], "approval_decided")
            assert decided
            assert decided[0]["data"]["decision"] == "approved"

    async def test_transient_policy_errors_are_retried(self, routing, bus: Bus, token) -> None:
        calls: list[dict[str, Any]] = []
        async with routing(
            policy_transport=contract_policy(calls, fail_first=2), policy_retry_backoff_ms=10
        ) as client:
            a = await assigned_post(client, bus, token)
            r = await client.post(
                f"/v1/assignments/{a['id']}/replies", json={"text": "Hello"}, headers=who(token, "r1")
            )
            assert r.status_code == 201, r.text
            assert len(calls) == 3

    async def test_unreachable_policy_fails_closed(self, routing, bus: Bus, token) -> None:
        publisher = RecordingPublisher()
        async with routing(
            policy_transport=unreachable(), publisher=publisher, policy_retry_backoff_ms=10
        ) as client:
            a = await assigned_post(client, bus, token)
            r = await client.post(
                f"/v1/assignments/{a['id']}/replies", json={"text": "Hello"}, headers=who(token, "r1")
            )
            assert r.status_code == 503
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "not published" in r.json()["detail"]
            assert publisher.published == []
            row = await assignment_of(client, a["post_id"], token("admin"))
            assert row["fr_due_at"] is not None  # no response counted

    async def test_only_the_holder_may_reply_and_input_is_bounded(self, routing, bus: Bus, token) -> None:
        calls: list[dict[str, Any]] = []
        async with routing(policy_transport=contract_policy(calls)) as client:
            a = await assigned_post(client, bus, token)
            url = f"/v1/assignments/{a['id']}/replies"
            assert (await client.post(url, json={"text": "hi"}, headers=who(token, "r2"))).status_code == 403
            too_long = await client.post(url, json={"text": "x" * 5001}, headers=who(token, "r1"))
            assert too_long.status_code == 422
            assert too_long.json()["errors"][0]["field"] == "body.text"
            bad_media = await client.post(
                url, json={"text": "hi", "media": [{"url": "http://x"}]}, headers=who(token, "r1")
            )
            assert bad_media.status_code == 422
            assert calls == []


class TestAgainstTheRealPolicyService:
    """The real policy app in-process, reached through routing's policy client."""

    async def test_reply_checked_by_the_real_policy_service(
        self, make_settings, running, routing, bus: Bus, token
    ) -> None:
        policy_app = create_policy(make_settings(PolicySettings))
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(running(policy_app))
            client = await stack.enter_async_context(
                routing(policy_transport=httpx.ASGITransport(app=policy_app))
            )
            a = await assigned_post(client, bus, token)
            r = await client.post(
                f"/v1/assignments/{a['id']}/replies",
                json={"text": "Thanks for asking: the M4 reopens at 6pm tonight."},
                headers=token("responder", departments=("transport",), subject="r1"),
            )
            assert r.status_code in (201, 202), r.text
            assert r.json()["check_id"]
            assert r.json()["policy_version"]
