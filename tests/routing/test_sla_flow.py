"""SLA timers through the real broker and database: warning then breach with escalation, pause while
awaiting the public, and no clock after resolution."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.routing.sla import Calendar, add_business_seconds, parse_hours
from tests.routing.conftest import Bus, add_responder, assignment_of, screened, setup_department, who

pytestmark = pytest.mark.kafka


async def policy(client: Any, admin: dict[str, str], name: str, **body: Any) -> None:
    r = await client.put(f"/v1/sla-policies/{name}", json=body, headers=admin)
    assert r.status_code == 200, r.text


class TestSlaTimers:
    async def test_warning_then_breach_with_escalation(self, routing, bus: Bus, token) -> None:
        admin = token("admin")
        async with routing() as client:
            await policy(
                client,
                admin,
                "fast",
                clock="wall",
                first_response_seconds=2,
                resolve_seconds=600,
                warning_fraction=0.5,
                breach_action="raise_priority",
            )
            await setup_department(client, admin, sla_policy="fast")
            await add_responder(client, admin, "r1", capacity=5)
            late = screened(priority=3)
            await bus.send(late)
            row = await assignment_of(client, late.post_id, admin, "offered")
            assert (
                await client.post(f"/v1/assignments/{row['id']}/accept", headers=who(token, "r1"))
            ).status_code == 200

            # sla.v1 and assignments.v1 are different topics: wait for each, in whatever order they come.
            await bus.events(
                lambda _: all(bus.of(late.post_id, kind) for kind in ("warning", "breached", "escalated")),
                within=15,
            )
            warning = bus.of(late.post_id, "warning")
            breached = bus.of(late.post_id, "breached")
            escalated = bus.of(late.post_id, "escalated")
            assert [e["data"]["target"] for e in warning] == ["first_response"]
            assert [e["data"]["target"] for e in breached] == ["first_response"]
            assert escalated[0]["data"]["action"] == "raise_priority"
            assert escalated[0]["data"]["previous_priority"] == 3
            assert (await assignment_of(client, late.post_id, admin))["priority"] == 2
            assert breached[0]["data"]["business_seconds_since_received"] >= 2
            await asyncio.sleep(0.5)  # several more timer ticks
            await bus.events(lambda _: True)
            assert len(bus.of(late.post_id, "breached")) == 1  # each timer fires once

    async def test_paused_and_resolved_work_never_fires_and_resume_carries_the_used_time(
        self, routing, bus: Bus, token
    ) -> None:
        admin = token("admin")
        async with routing() as client:
            await policy(
                client,
                admin,
                "short",
                clock="wall",
                first_response_seconds=5,
                resolve_seconds=600,
                warning_fraction=0.9,
                breach_action="notify",
            )
            await setup_department(client, admin, sla_policy="short")
            await add_responder(client, admin, "r1", capacity=5)
            paused, done = screened(), screened()
            rows = {}
            for p in (paused, done):
                await bus.send(p)
                rows[p.post_id] = await assignment_of(client, p.post_id, admin, "offered")
                await client.post(f"/v1/assignments/{rows[p.post_id]['id']}/accept", headers=who(token, "r1"))
            r = await client.post(
                f"/v1/assignments/{rows[paused.post_id]['id']}/await-public", headers=who(token, "r1")
            )
            assert r.status_code == 200, r.text
            assert r.json()["fr_due_at"] is None
            r = await client.post(
                f"/v1/assignments/{rows[done.post_id]['id']}/resolve",
                json={"outcome": "answered"},
                headers=who(token, "r1"),
            )
            assert r.status_code == 200
            received = datetime.fromisoformat(rows[paused.post_id]["created_at"])
            # Wait until both would have breached had their clocks kept running.
            await asyncio.sleep(max(0.0, (received - datetime.now(UTC)).total_seconds() + 6.5))
            await bus.events(lambda _: True)
            for p in (paused, done):
                assert bus.of(p.post_id, "breached") == []
            assert bus.of(done.post_id, "warning") == []

            r = await client.post(
                f"/v1/assignments/{rows[paused.post_id]['id']}/resume", headers=who(token, "r1")
            )
            assert r.status_code == 200
            due = datetime.fromisoformat(r.json()["fr_due_at"])
            # Less than the full 5 s is left: the time used before the pause was carried over.
            assert due - datetime.now(UTC) < timedelta(seconds=5)
            await bus.events(
                lambda _: all(bus.of(paused.post_id, kind) for kind in ("breached", "escalated")), within=15
            )
            assert bus.of(paused.post_id, "escalated")[0]["data"]["action"] == "notify"

    async def test_breach_reassigns_to_the_supervisors_queue(self, routing, bus: Bus, token) -> None:
        admin = token("admin")
        async with routing() as client:
            await policy(
                client,
                admin,
                "sup",
                clock="wall",
                first_response_seconds=1,
                resolve_seconds=600,
                warning_fraction=0.5,
                breach_action="reassign_supervisors",
            )
            await setup_department(client, admin, sla_policy="sup")
            await add_responder(client, admin, "r1", capacity=5)
            await add_responder(client, admin, "boss", capacity=5, skills=("supervisor",), status="away")
            post = screened()
            await bus.send(post)
            a = await assignment_of(client, post.post_id, admin, "offered")
            await client.post(f"/v1/assignments/{a['id']}/accept", headers=who(token, "r1"))
            await add_responder(client, admin, "boss", capacity=5, skills=("supervisor",))
            await bus.events(lambda _: bool(bus.of(post.post_id, "escalated")), within=15)
            row = await assignment_of(client, post.post_id, admin, "offered")
            assert (row["queue"], row["responder_id"], row["priority"]) == (
                "transport.supervisors",
                "boss",
                1,
            )


class TestAwaitingThePublic:
    async def test_the_publics_answer_resumes_the_clock_and_joins_the_assignment(
        self, routing, bus: Bus, token
    ) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await add_responder(client, admin, "r1", capacity=5)
            question = screened()
            await bus.send(question)
            a = await assignment_of(client, question.post_id, admin, "offered")
            await client.post(f"/v1/assignments/{a['id']}/accept", headers=who(token, "r1"))
            r = await client.post(f"/v1/assignments/{a['id']}/await-public", headers=who(token, "r1"))
            assert r.json()["status"] == "awaiting_public"
            assert r.json()["rs_due_at"] is None
            answer = screened(author_ref=question.author_ref, redacted_text="my ticket number is 123")
            await bus.send(answer)
            joined = await assignment_of(client, answer.post_id, admin, "grouped")
            assert joined["grouped_with"] == a["id"]
            resumed = await assignment_of(client, question.post_id, admin, "assigned")
            assert resumed["rs_due_at"] is not None
            await bus.events(lambda _: bool(bus.of(question.post_id, "resumed")))


class TestBusinessCalendarThroughTheService:
    async def test_deadlines_follow_the_departments_calendar(self, routing, bus: Bus, token) -> None:
        admin = token("admin")
        async with routing() as client:
            hours = {"mon": [["09:00", "10:00"]], "wed": [["13:00", "14:30"]]}
            await setup_department(client, admin, hours=hours, tz="Australia/Perth", state="WA")
            post = screened()
            await bus.send(post)
            await bus.events(lambda _: bool(bus.of(post.post_id, "created")))
            data = bus.of(post.post_id, "created")[0]["data"]
            received = datetime.fromisoformat(data["post_received_at"])
            calendar = Calendar(ZoneInfo("Australia/Perth"), parse_hours(hours), "WA", frozenset())
            # The built-in standard policy: 8.5 business hours to first response, 5 x 8.5 to resolve.
            assert datetime.fromisoformat(data["first_response_due_at"]) == add_business_seconds(
                calendar, received, 8.5 * 3600
            )
            assert datetime.fromisoformat(data["resolve_due_at"]) == add_business_seconds(
                calendar, received, 5 * 8.5 * 3600
            )
            ex = await client.get(f"/v1/assignments/{data['assignment_id']}/explanation", headers=admin)
            assert ex.json()["decisions"][0]["explanation"]["sla"] == {
                "policy": "standard",
                "clock": "business",
                "calendar": True,
            }
