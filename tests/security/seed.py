"""Two departments' worth of real objects, made through the four running services (no rows written by hand).

dept-a gets posts mentioning "alpha", dept-b everything else; each department has one responder.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import make_token

HOURS = {d: [["00:00", "23:59"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
DEPARTMENT = {"name": "D", "timezone": "Australia/Sydney", "hours": HOURS, "state": "NSW"}


def bearer(*roles: str, subject: str, departments: tuple[str, ...] = ()) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(*roles, departments=departments, subject=subject)}"}


ADMIN = bearer("admin", subject="seed-admin")
SYSTEM = bearer("agency_system", subject="seed-relay")


async def eventually(check: Callable[[], Awaitable[Any]], *, what: str, within: float = 45.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def post(text: str, *, author: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "platform": "x",
        "external_id": uuid.uuid4().hex,
        "account": "@Agency",
        "text": text,
        "author": author or {"id": uuid.uuid4().hex[:12], "handle": "someone"},
        "created_at": "2026-11-26T09:00:00+11:00",
        **extra,
    }


async def setup_directory(routing: httpx.AsyncClient) -> None:
    for dept in ("dept-a", "dept-b"):
        r = await routing.put(f"/v1/departments/{dept}", json=DEPARTMENT, headers=ADMIN)
        assert r.status_code == 200, r.text
        r = await routing.put(
            f"/v1/responders/resp-{dept[-1]}",
            json={"name": f"R {dept}", "departments": [dept], "capacity": 50, "status": "available"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
    rules = {
        "rules": [
            {
                "id": "alpha",
                "when": {"field": "text", "op": "contains_any", "value": ["alpha"]},
                "target": {"department": "dept-a"},
            }
        ],
        "default": {"department": "dept-b"},
    }
    r = await routing.post("/v1/routing-rules", json=rules, headers=ADMIN)
    assert r.status_code == 201, r.text


async def ingest_and_route(
    clients: dict[str, httpx.AsyncClient], body: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Ingest a post and wait until routing assigned it and metrics saw the assignment."""
    r = await clients["ingest"].post("/v1/posts", json=body, headers=SYSTEM)
    assert r.status_code == 202, r.text
    post_id: str = r.json()["id"]

    async def assigned() -> Any:
        found = await clients["routing"].get("/v1/assignments", params={"post_id": post_id}, headers=ADMIN)
        return found.json()[0] if found.status_code == 200 and found.json() else None

    assignment = await eventually(assigned, what=f"assignment of {post_id}")

    async def in_metrics() -> bool:
        t = await clients["metrics"].get(f"/v1/posts/{post_id}/timeline", headers=ADMIN)
        return t.status_code == 200 and any("assignment" in e["type"] for e in t.json()["events"])

    await eventually(in_metrics, what=f"metrics timeline of {post_id}")
    return post_id, assignment


@dataclass
class Seeded:
    post_a: str
    post_b: str
    assignment_a: dict[str, Any]
    assignment_b: dict[str, Any]
    check_b: str


async def seed_two_departments(clients: dict[str, httpx.AsyncClient]) -> Seeded:
    await setup_directory(clients["routing"])
    (post_a, assignment_a), (post_b, assignment_b) = await asyncio.gather(
        ingest_and_route(clients, post("The alpha bridge lights are out")),
        ingest_and_route(clients, post("The beta park bins are full")),
    )
    assert assignment_a["department"] == "dept-a"
    assert assignment_b["department"] == "dept-b"
    check = await clients["policy"].post(
        "/v1/checks",
        json={"text": "Thanks, we are on it.", "platform": "x", "department": "dept-b"},
        headers=bearer("responder", subject="resp-b", departments=("dept-b",)),
    )
    assert check.status_code == 201, check.text
    return Seeded(post_a, post_b, assignment_a, assignment_b, check.json()["check_id"])
