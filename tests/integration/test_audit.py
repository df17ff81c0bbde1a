"""The audit trail through the real services (FastAPI, the real broker, SQLite or PostgreSQL): real actions
are audited with their actor, GET /v1/audit is admin-only, filters and pages, and editing or deleting a row
directly in the database makes GET /v1/audit/verify and ``python -m shared.audit verify`` fail."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.metrics.config import MetricsSettings
from services.metrics.main import create_app as create_metrics
from services.metrics.models import DeadLetter
from services.policy.config import PolicySettings
from services.policy.main import create_app as create_policy
from services.routing.config import RoutingSettings
from services.routing.main import create_app as create_routing
from shared.config import BaseServiceSettings
from shared.contracts import PostReceivedV1, Topic, new_event
from shared.db.engine import Database
from tests.policy.test_api import PACK
from tests.routing.conftest import Bus, add_responder, assignment_of, screened, setup_department, who
from tests.routing.test_replies import RecordingPublisher, contract_policy

pytestmark = pytest.mark.kafka

# Identifiers a draft might carry: none of them may reach the audit log.
PERSONAL = ("Jane Citizen", "jane.citizen@example.com", "0412 345 678", "123 456 782")


async def sql(settings: BaseServiceSettings, statement: str, **params: Any) -> None:
    """Tamper with the service's database directly, as someone with database access could."""
    db = Database(settings.database_url, schema=settings.database_schema, name="tamper")
    try:
        async with db.transaction() as session:
            await session.execute(text(statement), params)
    finally:
        await db.dispose()


async def cli(settings: BaseServiceSettings) -> int:
    args = ["-m", "shared.audit", "verify", "--url", settings.database_url]
    if settings.database_schema:
        args += ["--schema", settings.database_schema]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    return await proc.wait()


async def make_audit_verify(policy: BaseServiceSettings, tmp_path: Any) -> tuple[int, str]:
    """``make audit-verify`` with policy's database as given and the other services' (SQLite) absent."""
    env = {
        **os.environ,
        "POLICY_DATABASE_URL": policy.database_url,
        "POLICY_DATABASE_SCHEMA": policy.database_schema or "",
    }
    for other in ("ROUTING", "METRICS"):
        env[f"{other}_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/absent-{other.lower()}.db"
    proc = await asyncio.create_subprocess_exec(
        "make",
        "-s",
        "audit-verify",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


async def entries(client: httpx.AsyncClient, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/audit", params=params, headers=admin)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def verify(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    r = await client.get("/v1/audit/verify", headers=admin)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def assert_linked(items: list[dict[str, Any]]) -> None:
    """Newest first: each entry's prev_hash is the next older entry's hash."""
    for newer, older in itertools.pairwise(items):
        assert newer["seq"] == older["seq"] + 1
        assert newer["prev_hash"] == older["entry_hash"]
    assert items[-1]["seq"] != 1 or items[-1]["prev_hash"] == "0" * 64


class TestPolicyAudit:
    async def test_checks_packs_and_modes_are_audited_and_tampering_is_detected(
        self, make_settings, running, token, tmp_path
    ) -> None:
        settings = make_settings(PolicySettings)
        admin = token("admin", subject="alice")
        async with running(create_policy(settings)) as client:
            draft = f"Hi {PERSONAL[0]}, email {PERSONAL[1]} or call {PERSONAL[2]}; your TFN {PERSONAL[3]}."
            check = await client.post(
                "/v1/checks",
                json={"text": draft, "platform": "x", "department": "transport"},
                headers={**token("responder", subject="r1"), "X-Correlation-ID": "corr-123"},
            )
            assert check.status_code == 201, check.text
            bad = await client.post(
                "/v1/checks", json={"text": "", "platform": "x"}, headers=token("responder")
            )
            assert bad.status_code == 422  # refused input is not a decision: nothing audited
            mode = await client.post(
                "/v1/modes",
                json={
                    "mode": "crisis",
                    "jurisdiction": "NSW",
                    "active": True,
                    "reason": "bushfire emergency",
                },
                headers=admin,
            )
            assert mode.status_code == 201, mode.text
            pack = PACK.replace("name: test-pack", "name: audit-pack")
            up = await client.post(
                "/v1/policies", content=pack, headers={**admin, "content-type": "application/yaml"}
            )
            assert up.status_code == 201, up.text
            act = await client.post(
                "/v1/policies/audit-pack@1/activate", json={"reason": "trial"}, headers=admin
            )
            assert act.status_code == 200, act.text

            # Admin only; a token is needed at all.
            for role in ("ops", "supervisor", "responder", "agency_system"):
                assert (await client.get("/v1/audit", headers=token(role))).status_code == 403
                assert (await client.get("/v1/audit/verify", headers=token(role))).status_code == 403
            assert (await client.get("/v1/audit")).status_code == 401

            items = await entries(client, admin)
            assert [(e["action"], e["actor"]) for e in items] == [
                ("policy.pack_activated", "alice"),
                ("policy.pack_uploaded", "alice"),
                ("policy.mode_changed", "alice"),
                ("policy.check", "r1"),
            ]
            assert_linked(items)
            checked = items[-1]
            assert checked["object_type"] == "check"
            assert checked["object_id"] == check.json()["check_id"]
            assert checked["correlation_id"] == "corr-123"
            assert checked["details"]["decision"] == check.json()["decision"]
            assert checked["details"]["policy_version"] == check.json()["policy_version"]
            assert items[2]["details"]["reason"] == "bushfire emergency"
            assert items[2]["object_id"] == "crisis:NSW"
            assert items[0]["details"]["reason"] == "trial"
            dumped = json.dumps(items)
            for value in PERSONAL:
                assert value not in dumped

            # Filters and pages.
            only = await entries(client, admin, action="policy.check")
            assert [e["seq"] for e in only] == [checked["seq"]]
            assert await entries(client, admin, object_id="audit-pack@1") == items[:2]
            future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            assert await entries(client, admin, since=future) == []
            page = (await client.get("/v1/audit", params={"limit": 3}, headers=admin)).json()
            assert len(page["items"]) == 3
            rest = await entries(client, admin, before_seq=page["next_before_seq"])
            assert rest == items[3:]
            for bad_params in (
                {"limit": 201},
                {"limit": 0},
                {"since": "2026-01-01T00:00:00"},
                {"object_id": "a\x00b"},
                {"action": "x" * 65},
                {"before_seq": 0},
            ):
                r = await client.get("/v1/audit", params=bad_params, headers=admin)
                assert r.status_code == 422, bad_params
                assert r.headers["content-type"].startswith("application/problem+json")

            assert await verify(client, admin) == {
                "ok": True,
                "entries": 4,
                "verified": 4,
                "first_broken_seq": None,
                "reason": None,
                "head_seq": 4,
                "head_hash": items[0]["entry_hash"],
            }
            assert await cli(settings) == 0
            code, out = await make_audit_verify(settings, tmp_path)
            assert code == 0, out

            # Someone edits the recorded decision of the check: found at that entry.
            await sql(settings, "UPDATE audit_entry SET actor = 'mallory' WHERE seq = 1")
            broken = await verify(client, admin)
            assert (broken["ok"], broken["first_broken_seq"], broken["verified"]) == (False, 1, 0)
            assert await cli(settings) == 1
            await sql(settings, "UPDATE audit_entry SET actor = 'r1' WHERE seq = 1")
            assert (await verify(client, admin))["ok"] is True

            # Someone deletes the mode switch.
            await sql(settings, "DELETE FROM audit_entry WHERE seq = 2")
            broken = await verify(client, admin)
            assert (broken["ok"], broken["first_broken_seq"]) == (False, 2)
            assert await cli(settings) == 1
            code, out = await make_audit_verify(settings, tmp_path)
            assert code != 0
            assert '"service": "policy"' in out
            assert '"first_broken_seq": 2' in out


class TestRoutingAudit:
    async def test_the_assignment_and_reply_lifecycle_and_rule_changes_are_audited(
        self, make_settings, running, broker, token
    ) -> None:
        settings = make_settings(RoutingSettings, default_department="transport", timer_interval_ms=100)
        app = create_routing(settings, policy_transport=contract_policy([]), publisher=RecordingPublisher())
        bus = Bus(broker)
        await bus.start()
        async with running(app) as client:
            admin = token("admin", subject="root")
            await setup_department(client, admin)
            await add_responder(client, admin, "r1", capacity=5)
            rules = await client.post(
                "/v1/routing-rules",
                json={"rules": [], "default": {"department": "transport"}, "activate": False},
                headers=admin,
            )
            assert rules.status_code == 201, rules.text
            version = rules.json()["version"]
            assert (
                await client.post(f"/v1/routing-rules/{version}/activate", headers=admin)
            ).status_code == 200

            post = screened(redacted_text=f"My name is {PERSONAL[0]}, call {PERSONAL[2]}")
            await bus.send(post)
            a = await assignment_of(client, post.post_id, admin, "offered")
            me = who(token, "r1")
            assert (await client.post(f"/v1/assignments/{a['id']}/accept", headers=me)).status_code == 200
            url = f"/v1/assignments/{a['id']}/replies"
            review = await client.post(url, json={"text": f"We will refund you, {PERSONAL[0]}"}, headers=me)
            assert review.status_code == 202, review.text
            approval_id = review.json()["approval_id"]
            boss = token("supervisor", departments=("transport",), subject="boss")
            rejected = await client.post(
                f"/v1/approvals/{approval_id}/reject", json={"reason": "no refunds"}, headers=boss
            )
            assert rejected.status_code == 200, rejected.text
            resolved = await client.post(
                f"/v1/assignments/{a['id']}/resolve", json={"outcome": "answered"}, headers=me
            )
            assert resolved.status_code == 200, resolved.text

            items = list(reversed(await entries(client, admin, limit=200)))
            assert [(e["action"], e["actor"]) for e in items] == [
                ("routing.rules_created", "root"),
                ("routing.rules_activated", "root"),
                ("assignment.created", "service:routing.assignment"),
                ("assignment.offered", "service:routing.assignment"),
                ("assignment.accepted", "r1"),
                ("reply.approval_requested", "r1"),
                ("reply.approval_decided", "boss"),
                ("assignment.resolved", "r1"),
            ]
            assert_linked(list(reversed(items)))
            assert items[0]["object_id"] == str(version)
            assert items[2]["object_id"] == a["id"]
            assert items[2]["details"]["post_id"] == post.post_id
            assert items[3]["details"]["responder_id"] == "r1"
            assert items[6]["object_type"] == "approval"
            assert items[6]["object_id"] == approval_id
            assert items[6]["details"]["decision"] == "rejected"
            assert items[7]["details"]["outcome"] == "answered"
            assert [e["action"] for e in await entries(client, admin, object_id=a["id"])] == [
                "assignment.resolved",
                "assignment.accepted",
                "assignment.offered",
                "assignment.created",
            ]
            dumped = json.dumps(items)
            for value in (*PERSONAL, post.author_ref, "refund", "no refunds"):
                assert value not in dumped

            result = await verify(client, admin)
            assert result["ok"] is True
            assert result["entries"] == len(items)

            edit = "UPDATE audit_entry SET details = :details WHERE seq = :seq"
            decided = items[6]
            await sql(
                settings,
                edit,
                details=json.dumps({**decided["details"], "decision": "approved"}),
                seq=decided["seq"],
            )
            broken = await verify(client, admin)
            assert (broken["ok"], broken["first_broken_seq"]) == (False, items[6]["seq"])
            assert await cli(settings) == 1

            # The tail is cut (the last two entries deleted): the head anchor still says how far it went.
            await sql(settings, edit, details=json.dumps(decided["details"]), seq=decided["seq"])
            assert (await verify(client, admin))["ok"] is True
            await sql(settings, "DELETE FROM audit_entry WHERE seq >= :seq", seq=decided["seq"])
            broken = await verify(client, admin)
            assert (broken["ok"], broken["first_broken_seq"]) == (False, items[6]["seq"])
        await bus.stop()


class TestMetricsAudit:
    async def test_a_dead_letter_replay_is_audited(self, make_settings, running, token) -> None:
        settings = make_settings(MetricsSettings, consumers_enabled=False)
        app = create_metrics(settings)
        async with running(app) as client:
            post = PostReceivedV1(
                post_id="p-audit",
                platform="x",
                external_id="1",
                account="@agency",
                author_ref="a" * 32,
                text=f"Call {PERSONAL[0]} on {PERSONAL[2]}",
                created_at=datetime.now(UTC),
                received_at=datetime.now(UTC),
            )
            env = new_event(post, source="/test")
            # What the dead-letter collector stores when a consumer parks a message.
            async with app.state.runtime.database.transaction() as session:
                dead = DeadLetter(
                    dlq_topic=f"{Topic.POSTS_RECEIVED}.dlq.routing.assignment",
                    dlq_partition=0,
                    dlq_offset=7,
                    original_topic=Topic.POSTS_RECEIVED.value,
                    original_partition=1,
                    original_offset=41,
                    consumer_group="routing.assignment",
                    error="RuntimeError: downstream refused",
                    event_id=env.id,
                    event_type=env.type,
                    key=post.post_id,
                    value=env.model_dump_json().encode(),
                    headers={},
                    received_at=datetime.now(UTC),
                    replay_count=0,
                )
                session.add(dead)
                await session.flush()
                dead_id = dead.id
            ops = token("ops", subject="oncall-1")
            replayed = await client.post(
                f"/v1/ops/dead-letters/{dead_id}/replay", json={"reason": "downstream fixed"}, headers=ops
            )
            assert replayed.status_code == 202, replayed.text
            missing = await client.post(
                "/v1/ops/dead-letters/999999/replay", json={"reason": "x"}, headers=ops
            )
            assert missing.status_code == 404

            admin = token("admin")
            (entry,) = await entries(client, admin)
            assert entry["action"] == "dead_letter.replayed"
            assert entry["actor"] == "oncall-1"
            assert entry["object_id"] == str(dead_id)
            assert entry["details"]["replay_id"] == replayed.json()["replay_id"]
            assert entry["details"]["event_id"] == env.id
            assert entry["details"]["reason"] == "downstream fixed"
            for value in PERSONAL:
                assert value not in json.dumps(entry)
            assert (await client.get("/v1/audit", headers=ops)).status_code == 403
            assert (await verify(client, admin))["ok"] is True
            await sql(settings, "DELETE FROM audit_entry")
            broken = await verify(client, admin)
            assert (broken["ok"], broken["first_broken_seq"], broken["entries"]) == (False, 1, 0)
            assert await cli(settings) == 1
