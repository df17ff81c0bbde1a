"""Directory and rule-set API: validation as problem+json naming the field, roles, versions, dry runs."""

from __future__ import annotations

import pytest

from tests.routing.conftest import Bus, add_responder, assignment_of, screened, setup_department

pytestmark = pytest.mark.kafka

RULES = {
    "rules": [
        {
            "id": "roads",
            "when": {"all": [{"field": "text", "op": "contains_any", "value": ["pothole"]}]},
            "target": {"department": "transport", "required_skills": ["roads"], "priority": 2},
        },
        {
            "id": "crisis-words",
            "when": {"field": "risk", "op": "gte", "value": "high"},
            "target": {"department": "health"},
        },
    ],
    "default": {"department": "transport"},
}


class TestDirectory:
    async def test_department_validation_roles_and_queues(self, routing, token) -> None:
        admin = token("admin")
        async with routing() as client:
            bad = await client.put(
                "/v1/departments/transport",
                json={
                    "name": "T",
                    "timezone": "Mars/Olympus",
                    "hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]},
                },
                headers=admin,
            )
            assert bad.status_code == 422
            assert bad.headers["content-type"].startswith("application/problem+json")
            fields = {e["field"] for e in bad.json()["errors"]}
            assert {"body.timezone", "body.hours"} <= fields
            bad_state = await client.put(
                "/v1/departments/transport",
                json={"name": "T", "timezone": "Australia/Perth", "hours": {}, "state": "XX"},
                headers=admin,
            )
            assert bad_state.json()["errors"][0]["field"] == "body.state"

            supervisor = token("supervisor", departments=("transport",))
            r = await client.put(
                "/v1/departments/transport",
                json={
                    "name": "Transport",
                    "timezone": "Australia/Perth",
                    "hours": {"mon": [["08:30", "17:00"]]},
                    "state": "WA",
                    "closures": ["2026-12-24"],
                },
                headers=supervisor,
            )
            assert r.status_code == 200, r.text
            assert (
                await client.put(
                    "/v1/departments/health",
                    json={"name": "H", "timezone": "UTC", "hours": {}},
                    headers=supervisor,
                )
            ).status_code == 403
            responder = token("responder", departments=("transport",))
            assert (
                await client.put("/v1/departments/transport", json={}, headers=responder)
            ).status_code == 403
            assert (await client.get("/v1/departments", headers={})).status_code == 401

            queues = (
                await client.get("/v1/queues", params={"department": "transport"}, headers=admin)
            ).json()
            assert {q["id"]: q["kind"] for q in queues} == {
                "transport.default": "standard",
                "transport.supervisors": "supervisors",
            }
            await setup_department(client, admin, "crisis")
            crisis = (await client.get("/v1/queues", params={"department": "crisis"}, headers=admin)).json()
            assert "crisis.crisis" in {q["id"] for q in crisis}

            too_many = await client.get("/v1/departments", params={"limit": 1000}, headers=admin)
            assert too_many.status_code == 422
            cap = await client.put(
                "/v1/responders/r1",
                json={"name": "R", "departments": ["transport"], "capacity": 101},
                headers=admin,
            )
            assert cap.json()["errors"][0]["field"] == "body.capacity"
            await add_responder(client, admin, "r1")
            other = token("responder", departments=("transport",), subject="r2")
            assert (
                await client.put("/v1/responders/r1/status", json={"status": "away"}, headers=other)
            ).status_code == 403
            mine = token("responder", departments=("transport",), subject="r1")
            r = await client.put("/v1/responders/r1/status", json={"status": "away"}, headers=mine)
            assert r.json()["status"] == "away"


class TestRuleSets:
    async def test_invalid_rules_are_422_naming_rule_and_field(self, routing, token) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            bad = {
                "rules": [
                    {
                        "id": "ok",
                        "when": {"field": "platform", "op": "eq", "value": "x"},
                        "target": {"department": "transport"},
                    },
                    {
                        "id": "broken",
                        "when": {"all": [{"field": "labels", "op": "gte", "value": 3}]},
                        "target": {"department": "transport"},
                    },
                ],
                "default": {"department": "transport"},
            }
            r = await client.post("/v1/routing-rules", json=bad, headers=admin)
            assert r.status_code == 422
            assert "broken" in r.json()["detail"]
            [err] = r.json()["errors"]
            assert err["field"] == "body.rules[1].when.all[0].op"
            assert err["reason"].startswith("rule broken:")

            unknown_dept = await client.post("/v1/routing-rules", json=RULES, headers=admin)
            assert unknown_dept.status_code == 422
            assert unknown_dept.json()["errors"][0]["field"] == "body.rules[1].target.department"

            supervisor = token("supervisor", departments=("transport",))
            assert (await client.post("/v1/routing-rules", json=RULES, headers=supervisor)).status_code == 403

    async def test_versions_activation_and_dry_run(self, routing, bus: Bus, token) -> None:
        admin = token("admin")
        async with routing() as client:
            await setup_department(client, admin)
            await setup_department(client, admin, "health")
            v1 = await client.post("/v1/routing-rules", json=RULES, headers=admin)
            assert v1.status_code == 201, v1.text
            assert (v1.json()["version"], v1.json()["active"]) == (1, True)
            v2 = await client.post(
                "/v1/routing-rules", json={**RULES, "rules": [], "activate": False}, headers=admin
            )
            assert (v2.json()["version"], v2.json()["active"]) == (2, False)

            dry = await client.post(
                "/v1/routing-rules/1/evaluate",
                json={
                    "posts": [
                        {"post_id": "a", "platform": "x", "text": "pothole on Main St"},
                        {"post_id": "b", "platform": "x", "text": "hello", "risk": "critical"},
                        {"post_id": "c", "platform": "email", "text": "hi", "labels": ["threat"]},
                        {"post_id": "d", "platform": "x", "text": "hi", "priority": 4},
                    ]
                },
                headers=admin,
            )
            assert dry.status_code == 200, dry.text
            got = {
                r["post_id"]: (r["rule_id"], r["department"], r["priority"]) for r in dry.json()["results"]
            }
            assert got == {
                "a": ("roads", "transport", 2),
                "b": ("crisis-words", "health", 3),
                "c": ("builtin.crisis", "crisis", 1),
                "d": ("default", "transport", 4),
            }
            assert (
                await client.post(
                    "/v1/routing-rules/9/evaluate", json={"posts": [{"platform": "x"}]}, headers=admin
                )
            ).status_code == 404
            assert (
                await client.post("/v1/routing-rules/1/evaluate", json={"posts": []}, headers=admin)
            ).status_code == 422

            # Live routing follows the active version; switching versions changes it and is recorded.
            post = screened(redacted_text="pothole")
            await bus.send(post)
            a = await assignment_of(client, post.post_id, admin)
            assert (a["rule_id"], a["ruleset_version"], a["priority"]) == ("roads", "1", 2)
            assert (await client.post("/v1/routing-rules/2/activate", headers=admin)).json()["active"] is True
            later = screened(redacted_text="pothole")
            await bus.send(later)
            b = await assignment_of(client, later.post_id, admin)
            assert (b["rule_id"], b["ruleset_version"]) == ("default", "2")
            listed = (await client.get("/v1/routing-rules", headers=admin)).json()
            assert [(r["version"], r["active"]) for r in listed] == [(2, True), (1, False)]
