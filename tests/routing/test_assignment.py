"""Assignment scenarios through the real broker and database: offer, accept, queue drain, fairness, crisis,
near-duplicates, decline and offer expiry, explanations."""

from __future__ import annotations

from typing import Any

import pytest

from tests.routing.conftest import (
    Bus,
    add_responder,
    assignment_of,
    eventually,
    screened,
    setup_department,
    who,
)

pytestmark = pytest.mark.kafka


class TestOfferAndAccept:
    async def test_post_is_offered_to_least_loaded_accepted_resolved_and_explained(
        self, routing, bus: Bus, token
    ) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await add_responder(client, admin, "busy", capacity=3)
            await add_responder(client, admin, "free", capacity=3)
            await add_responder(client, admin, "away", status="away")
            first = screened()
            await bus.send(first)
            a1 = await assignment_of(client, first.post_id, admin, "offered")
            # Whoever took the first, the second goes to the other (least loaded).
            second = screened()
            await bus.send(second)
            a2 = await assignment_of(client, second.post_id, admin, "offered")
            assert {a1["responder_id"], a2["responder_id"]} == {"busy", "free"}

            r = await client.post(
                f"/v1/assignments/{a2['id']}/accept", headers=who(token, a2["responder_id"])
            )
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "assigned"
            again = await client.post(
                f"/v1/assignments/{a2['id']}/accept", headers=who(token, a2["responder_id"])
            )
            assert again.status_code == 409
            assert again.headers["content-type"].startswith("application/problem+json")
            other = await client.post(
                f"/v1/assignments/{a1['id']}/accept", headers=who(token, a2["responder_id"])
            )
            assert other.status_code == 403

            r = await client.post(
                f"/v1/assignments/{a2['id']}/resolve",
                json={"outcome": "answered"},
                headers=who(token, a2["responder_id"]),
            )
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "resolved"
            assert r.json()["fr_due_at"] is None
            assert r.json()["rs_due_at"] is None

            ex = await client.get(f"/v1/assignments/{a2['id']}/explanation", headers=admin)
            assert ex.status_code == 200
            kinds = [d["kind"] for d in ex.json()["decisions"]]
            assert kinds == ["routed", "offered", "accepted", "resolved"]
            routed, offered = (
                ex.json()["decisions"][0]["explanation"],
                ex.json()["decisions"][1]["explanation"],
            )
            assert routed["rule"]["rule_id"] == "default"
            assert routed["rule"]["ruleset_version"] == "builtin-0"
            assert offered["reason"] == "least_loaded_longest_idle"
            assert offered["candidates_considered"] == 3
            assert {"responder_id": "away", "reason": "away"} in offered["excluded"]

            await bus.events(lambda _: len(bus.of(second.post_id)) >= 4)
            types = [e["type"].split(".")[-2] for e in bus.of(second.post_id)]
            assert types == ["created", "offered", "accepted", "resolved"]
            resolved = bus.of(second.post_id, "resolved")[0]["data"]
            assert resolved["post_received_at"] is not None
            assert resolved["business_seconds_since_received"] >= 0

    async def test_another_departments_responder_sees_nothing(self, routing, bus: Bus, token) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            post = screened()
            await bus.send(post)
            a = await assignment_of(client, post.post_id, admin, "waiting")
            outsider = token("responder", departments=("health",), subject="h1")
            assert (await client.get(f"/v1/assignments/{a['id']}", headers=outsider)).status_code == 404
            assert (
                await client.get(f"/v1/assignments/{a['id']}/explanation", headers=outsider)
            ).status_code == 404
            assert (await client.get("/v1/queue", headers=outsider)).json()["waiting"] == []
            insider = (await client.get("/v1/queue", headers=who(token, "t9"))).json()
            assert [w["post_id"] for w in insider["waiting"]] == [post.post_id]


class TestQueueDrain:
    async def test_waiting_posts_drain_by_priority_then_age_the_moment_capacity_frees(
        self, routing, bus: Bus, token
    ) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await add_responder(client, admin, "r1", capacity=1)
            held = screened()
            await bus.send(held)
            a_held = await assignment_of(client, held.post_id, admin, "offered")
            old, new_urgent, newer = screened(priority=3), screened(priority=2), screened(priority=3)
            for p in (old, new_urgent, newer):
                await bus.send(p)
                await assignment_of(client, p.post_id, admin, "waiting")
            ex = await client.get(
                f"/v1/assignments/{(await assignment_of(client, newer.post_id, admin))['id']}/explanation",
                headers=admin,
            )
            queued = ex.json()["decisions"][-1]
            assert queued["kind"] == "queued"
            assert {"responder_id": "r1", "reason": "at_capacity"} in queued["explanation"]["excluded"]

            # Capacity frees (decline): the most urgent waiting post goes first, not the newest arrival.
            r = await client.post(f"/v1/assignments/{a_held['id']}/decline", headers=who(token, "r1"))
            assert r.status_code == 200, r.text
            offered = await assignment_of(client, new_urgent.post_id, admin, "offered")
            assert offered["responder_id"] == "r1"
            await client.post(f"/v1/assignments/{offered['id']}/accept", headers=who(token, "r1"))
            await client.post(
                f"/v1/assignments/{offered['id']}/resolve", json={"outcome": "done"}, headers=who(token, "r1")
            )
            # Equal priority: the older post before the newer one.
            assert (await assignment_of(client, old.post_id, admin, "offered"))["responder_id"] == "r1"
            assert (await assignment_of(client, newer.post_id, admin))["status"] == "waiting"

    async def test_a_responder_becoming_available_drains_the_queue(self, routing, bus: Bus, token) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await add_responder(client, admin, "r1", capacity=2, status="offline")
            posts = [screened() for _ in range(3)]
            for p in posts:
                await bus.send(p)
                await assignment_of(client, p.post_id, admin, "waiting")
            r = await client.put(
                "/v1/responders/r1/status", json={"status": "available"}, headers=who(token, "r1")
            )
            assert r.status_code == 200, r.text
            assert r.json()["load"] == 2  # never over capacity
            statuses = [(await assignment_of(client, p.post_id, admin))["status"] for p in posts]
            assert statuses == ["offered", "offered", "waiting"]

    async def test_release_returns_work_to_the_queue_and_to_someone_else(
        self, routing, bus: Bus, token
    ) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await add_responder(client, admin, "r1", capacity=1)
            post = screened()
            await bus.send(post)
            a = await assignment_of(client, post.post_id, admin, "offered")
            await client.post(f"/v1/assignments/{a['id']}/accept", headers=who(token, "r1"))
            await add_responder(client, admin, "r2", capacity=1)
            r = await client.post(
                f"/v1/assignments/{a['id']}/release", json={"reason": "going home"}, headers=who(token, "r1")
            )
            assert r.status_code == 200, r.text
            assert (await assignment_of(client, post.post_id, admin, "offered"))["responder_id"] == "r2"


class TestSkillsContinuityCrisisDuplicates:
    async def test_required_skills_language_and_continuity(self, routing, bus: Bus, token) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await add_responder(client, admin, "roads", skills=("roads",), capacity=5)
            await add_responder(client, admin, "plain", capacity=5)
            await add_responder(client, admin, "vi", languages=("vi",), capacity=5)
            r = await client.post(
                "/v1/routing-rules",
                json={
                    "rules": [
                        {
                            "id": "roads",
                            "when": {"field": "text", "op": "contains_any", "value": ["pothole"]},
                            "target": {"department": "transport", "required_skills": ["roads"]},
                        }
                    ],
                    "default": {"department": "transport"},
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
            pothole = screened(redacted_text="Huge pothole on Main St")
            await bus.send(pothole)
            a = await assignment_of(client, pothole.post_id, admin, "offered")
            assert (a["responder_id"], a["rule_id"], a["ruleset_version"]) == ("roads", "roads", "1")

            vietnamese = screened(labels=["lang:vi"])
            await bus.send(vietnamese)
            assert (await assignment_of(client, vietnamese.post_id, admin, "offered"))["responder_id"] == "vi"

            # Same author again: continuity prefers the responder who handled them, even though busier.
            again = screened(author_ref=pothole.author_ref, redacted_text="thanks, also the lights")
            await bus.send(again)
            b = await assignment_of(client, again.post_id, admin, "offered")
            assert b["responder_id"] == "roads"
            ex = (await client.get(f"/v1/assignments/{b['id']}/explanation", headers=admin)).json()
            assert ex["decisions"][1]["explanation"]["reason"] == "continuity"

    async def test_crisis_labels_go_to_the_crisis_queue_at_top_priority_on_a_wall_clock(
        self, routing, bus: Bus, token
    ) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await setup_department(client, admin, "crisis", hours={"mon": [["09:00", "10:00"]]})
            await add_responder(client, admin, "c1", depts=("crisis",))
            post = screened(labels=["self_harm"], priority=4)
            await bus.send(post)
            a = await assignment_of(client, post.post_id, admin, "offered")
            assert (a["department"], a["queue"], a["priority"], a["responder_id"]) == (
                "crisis",
                "crisis.crisis",
                1,
                "c1",
            )
            assert a["sla_policy"] == "crisis"
            # Wall clock: 15 minutes whatever the department's (tiny) opening hours.
            created = await bus.events(lambda _: bool(bus.of(post.post_id, "created")))
            data = bus.of(post.post_id, "created")[0]["data"]
            assert created
            from datetime import datetime

            due = datetime.fromisoformat(data["first_response_due_at"])
            received = datetime.fromisoformat(data["post_received_at"])
            assert (due - received).total_seconds() == 15 * 60

    async def test_near_duplicate_joins_the_existing_assignment(self, routing, bus: Bus, token) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await add_responder(client, admin, "r1", capacity=1)
            original = screened()
            await bus.send(original)
            a = await assignment_of(client, original.post_id, admin, "offered")
            dup = screened(duplicate_of=original.post_id)
            await bus.send(dup)
            d = await assignment_of(client, dup.post_id, admin, "grouped")
            assert (d["grouped_with"], d["responder_id"]) == (a["id"], "r1")
            r = (await client.get("/v1/responders", params={"department": "transport"}, headers=admin)).json()
            assert r[0]["load"] == 1  # the duplicate did not take capacity
            await client.post(f"/v1/assignments/{a['id']}/accept", headers=who(token, "r1"))
            await client.post(
                f"/v1/assignments/{a['id']}/resolve", json={"outcome": "answered"}, headers=who(token, "r1")
            )
            assert (await assignment_of(client, dup.post_id, admin, "resolved"))["outcome"] == "answered"
            created = await bus.events(lambda _: bool(bus.of(dup.post_id, "created")))
            assert created
            assert bus.of(dup.post_id, "created")[0]["data"]["grouped_with"] == a["id"]

    async def test_replayed_post_is_not_assigned_twice(self, routing, bus: Bus, token) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            post = screened()
            await bus.send(post)
            await bus.send(post)  # same post, new event id: a replay from upstream
            await assignment_of(client, post.post_id, admin)
            await bus.events(lambda _: bool(bus.of(post.post_id, "created")))
            marker = screened()
            await bus.send(marker)
            await bus.events(lambda _: bool(bus.of(marker.post_id, "created")))
            assert len(bus.of(post.post_id, "created")) == 1


class TestDeclineAndExpiry:
    async def test_an_unanswered_offer_expires_and_goes_to_the_next_responder(
        self, routing, bus: Bus, token
    ) -> None:
        admin = token("admin")
        async with routing(offer_timeout_seconds=1) as client:
            await setup_department(client, admin)
            await add_responder(client, admin, "a", capacity=1)
            await add_responder(client, admin, "b", capacity=1)
            post = screened()
            await bus.send(post)
            first = await assignment_of(client, post.post_id, admin, "offered")

            async def moved() -> dict[str, Any] | None:
                row = await assignment_of(client, post.post_id, admin)
                return (
                    row
                    if row["status"] == "offered" and row["responder_id"] != first["responder_id"]
                    else None
                )

            second = await eventually(moved, within=10, what="re-offer after expiry")
            assert second["responder_id"] in {"a", "b"}
            await bus.events(lambda _: bool(bus.of(post.post_id, "declined")))
            assert bus.of(post.post_id, "declined")[0]["data"]["reason"] == "offer_expired"
            ex = (await client.get(f"/v1/assignments/{first['id']}/explanation", headers=admin)).json()
            assert [d["kind"] for d in ex["decisions"]][:4] == [
                "routed",
                "offered",
                "offer_expired",
                "offered",
            ]


class TestTransfer:
    async def test_transfer_to_a_department_or_an_eligible_responder_only(
        self, routing, bus: Bus, token
    ) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await setup_department(client, admin, "health")
            await add_responder(client, admin, "t1", capacity=1)
            await add_responder(client, admin, "t2", capacity=1)
            await add_responder(client, admin, "h1", depts=("health",), capacity=1)
            first, second = screened(), screened()
            for p in (first, second):
                await bus.send(p)
            a = await assignment_of(client, first.post_id, admin, "offered")
            b = await assignment_of(client, second.post_id, admin, "offered")
            holder_a, holder_b = a["responder_id"], b["responder_id"]
            await client.post(f"/v1/assignments/{a['id']}/accept", headers=who(token, holder_a))
            full = await client.post(
                f"/v1/assignments/{a['id']}/transfer",
                json={"responder_id": holder_b, "reason": "knows the case"},
                headers=who(token, holder_a),
            )
            assert full.status_code == 409  # never over capacity, not even by hand
            assert "at_capacity" in full.json()["detail"]
            assert (
                await client.post(
                    f"/v1/assignments/{a['id']}/transfer", json={"reason": "x"}, headers=who(token, holder_a)
                )
            ).status_code == 422

            moved = await client.post(
                f"/v1/assignments/{a['id']}/transfer",
                json={"department": "health", "reason": "a clinic question"},
                headers=who(token, holder_a),
            )
            assert moved.status_code == 200, moved.text
            assert (moved.json()["department"], moved.json()["queue"]) == ("health", "health.default")
            # The health queue drained at once, and the transport responder's capacity came back.
            assert (await assignment_of(client, first.post_id, admin, "offered"))["responder_id"] == "h1"
            await bus.events(lambda _: bool(bus.of(first.post_id, "transferred")))
            t = bus.of(first.post_id, "transferred")[0]["data"]
            assert (t["from_department"], t["from_responder_id"], t["department"]) == (
                "transport",
                holder_a,
                "health",
            )
            ex = (await client.get(f"/v1/assignments/{a['id']}/explanation", headers=admin)).json()
            assert "transferred" in [d["kind"] for d in ex["decisions"]]
