"""BOLA: department A's people against department B's objects, for every path with an object id and every
list endpoint, generated from the route tables over real objects made through the running services.

Reading or acting on another department's object answers 404 (as if absent: no existence oracle). Upserts
(PUT) check the caller's right to the department named before looking anything up, so they may answer 403;
the object must be unchanged afterwards. Lists never carry another department's ids or names.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.auth import Role
from tests.security.routes import allowed_roles, v1_operations
from tests.security.seed import ADMIN, DEPARTMENT, Seeded, bearer, seed_two_departments

pytestmark = pytest.mark.kafka

#: Department A's people (department-scoped roles; admin and ops see every department by design).
INSIDERS = {
    Role.RESPONDER: bearer("responder", subject="resp-a", departments=("dept-a",)),
    Role.SUPERVISOR: bearer("supervisor", subject="sup-a", departments=("dept-a",)),
}
#: Path parameters naming objects that belong to no department (platform configuration), with why.
GLOBAL_PARAMS = {
    "policy_version": "policy packs are platform-wide",
    "version": "routing rule sets are platform-wide",
    "name": "SLA policies are platform-wide",
    "dead_letter_id": "dead letters are ops-only (no department role may call)",
}
#: Lists of platform-wide configuration, which names departments by design (not their objects).
GLOBAL_LISTS = {"/v1/routing-rules": "the rule set routes to every department, so it names them"}
#: Path parameters of department objects this suite cannot make through the API yet.
NOT_SEEDED = {"approval_id": "needs a reply that policy sends to review; the service's 404 rule is shared"}

PUT_BODIES: dict[str, dict[str, Any]] = {
    "/v1/departments/{department_id}": {**DEPARTMENT, "name": "Taken over"},
    "/v1/responders/{responder_id}": {"name": "Moved", "departments": ["dept-a"], "capacity": 1},
    "/v1/responders/{responder_id}/status": {"status": "offline"},
    "/v1/queues/{queue_id}": {"department": "dept-a", "name": "Moved"},
}
POST_BODIES: dict[str, dict[str, Any]] = {
    "release": {"reason": "bola"},
    "transfer": {"department": "dept-a", "reason": "bola"},
    "resolve": {"outcome": "done"},
    "replies": {"text": "Hello from another department"},
    "approve": {"reason": "bola"},
    "reject": {"reason": "bola"},
}


def b_values(seed: Seeded) -> dict[str, str]:
    return {
        "post_id": seed.post_b,
        "assignment_id": seed.assignment_b["id"],
        "check_id": seed.check_b,
        "department_id": "dept-b",
        "responder_id": "resp-b",
        "queue_id": "dept-b.default",
    }


def b_markers(seed: Seeded) -> list[str]:
    return [seed.post_b, seed.assignment_b["id"], seed.check_b, "dept-b", "resp-b"]


def params_of(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


async def snapshot(clients: dict[str, httpx.AsyncClient], seed: Seeded) -> list[Any]:
    routing = clients["routing"]
    return [
        (await routing.get("/v1/departments/dept-b", headers=ADMIN)).json(),
        (await routing.get("/v1/responders", params={"department": "dept-b"}, headers=ADMIN)).json(),
        [q for q in (await routing.get("/v1/queues", headers=ADMIN)).json() if q["id"] == "dept-b.default"],
        (await routing.get(f"/v1/assignments/{seed.assignment_b['id']}", headers=ADMIN)).json(),
    ]


async def test_department_a_cannot_reach_department_b(
    platform: tuple[dict[str, FastAPI], dict[str, httpx.AsyncClient]],
) -> None:
    _, clients = platform
    seed = await seed_two_departments(clients)
    before = await snapshot(clients, seed)
    values = b_values(seed)
    unclassified, failures, tried = [], [], 0
    for op in v1_operations():
        names = params_of(op.path)
        if not names:
            continue
        if any(n in GLOBAL_PARAMS or n in NOT_SEEDED for n in names):
            continue
        if not all(n in values for n in names):
            unclassified.append(f"{op.service} {op.method} {op.path}")
            continue
        url = op.path
        for n in names:
            url = url.replace(f"{{{n}}}", values[n])
        body = PUT_BODIES.get(op.path) if op.method == "PUT" else POST_BODIES.get(op.path.rsplit("/", 1)[-1])
        for role, headers in INSIDERS.items():
            if role not in (allowed_roles(op.route) or ()):
                continue  # the role matrix covers it (403)
            tried += 1
            r = await clients[op.service].request(op.method, url, headers=headers, json=body)
            expected = {403, 404} if op.method == "PUT" else {404}
            if r.status_code not in expected or r.headers.get("content-type") != "application/problem+json":
                failures.append(f"{role} {op.method} {url}: {r.status_code} {r.text[:200]}")
    assert not unclassified, f"classify these object ids (department-owned or global): {unclassified}"
    assert tried >= 20
    assert not failures, "\n".join(failures)
    assert await snapshot(clients, seed) == before

    # Their own department's objects are reachable: the 404s above are about ownership, not a broken path.
    own = await clients["routing"].get(
        f"/v1/assignments/{seed.assignment_a['id']}", headers=INSIDERS[Role.RESPONDER]
    )
    assert own.status_code == 200
    own_timeline = await clients["metrics"].get(
        f"/v1/posts/{seed.post_a}/timeline", headers=INSIDERS[Role.SUPERVISOR]
    )
    assert own_timeline.status_code == 200

    # Lists: nothing of department B, for every list endpoint a department role may call.
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
    query = {
        "/v1/assignments": {"post_id": seed.post_b},
        "/v1/responders": {"department": "dept-a"},
        "/v1/timeliness": window,
        "/v1/reports/timeliness.csv": window,
        "/v1/volume": window,
        "/v1/spikes": window,
    }
    leaks, listed = [], 0
    for op in v1_operations():
        if op.method != "GET" or params_of(op.path) or op.path in GLOBAL_LISTS:
            continue
        for role, headers in INSIDERS.items():
            if role not in (allowed_roles(op.route) or ()):
                continue
            listed += 1
            r = await clients[op.service].get(op.path, params=query.get(op.path), headers=headers)
            assert r.status_code == 200, (role, op.path, r.status_code, r.text[:300])
            found = [m for m in b_markers(seed) if m in r.text]
            if found:
                leaks.append(f"{role} GET {op.path}: {found}")
    assert listed >= 12
    assert not leaks, "\n".join(leaks)
    # ... while an admin's lists do show department B (the filter, not an empty database, hides it).
    for service, path, params in [
        ("routing", "/v1/queues", None),
        ("routing", "/v1/departments", None),
        ("routing", "/v1/assignments", {"post_id": seed.post_b}),
        ("metrics", "/v1/backlog", None),
        ("metrics", "/v1/volume", window),
    ]:
        r = await clients[service].get(path, params=params, headers=ADMIN)
        assert "dept-b" in r.text, (path, r.text[:300])
