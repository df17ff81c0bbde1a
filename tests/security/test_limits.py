"""API4 (unrestricted resource consumption): body size 413, page-size cap, per-principal 429 with
Retry-After, and the metrics statement timeout answering 503 (not 500), on all four services."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.metrics.config import MetricsSettings
from services.metrics.endpoints import bounded
from services.metrics.main import create_app as create_metrics
from shared.auth import TokenVerifier
from shared.config import AuthSettings, RateLimitSettings
from shared.errors import Unavailable
from shared.http import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from shared.ratelimit import PrincipalRateLimiter, TokenBucket
from tests.conftest import TEST_SECRET, make_token
from tests.security.openapi_walk import json_request_body, resolve
from tests.security.routes import FACTORIES, v1_operations

SPECS = {service: factory().openapi() for service, factory in FACTORIES.items()}


def bearer(*roles: str, subject: str, departments: tuple[str, ...] = ()) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(*roles, departments=departments, subject=subject)}"}


def client_of(app: FastAPI) -> httpx.AsyncClient:
    """The app without its lifespan: enough for checks that run before any handler."""
    app.state.token_verifier = TokenVerifier(AuthSettings(dev_secret=TEST_SECRET))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


# --- body size ----------------------------------------------------------------------------------------------


def first_json_body_operation(service: str) -> tuple[str, str]:
    for path, operations in SPECS[service]["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/v1") and json_request_body(operation) is not None:
                return method.upper(), re.sub(r"\{[^}]+\}", "1", path)
    raise AssertionError(f"{service} has no JSON body operation")


@pytest.mark.parametrize("service", list(FACTORIES))
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_413_problem_json(
    service: str, declared: bool, build_apps: Callable[..., dict[str, FastAPI]]
) -> None:
    app = build_apps(max_body_bytes=2048)[service]
    method, path = first_json_body_operation(service)
    body = b'{"text": "' + b"a" * 4096 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    content: Any = body if declared else chunks()
    headers = {**bearer("admin", subject="body-size"), "content-type": "application/json"}
    async with client_of(app) as client:
        r = await client.request(method, path, content=content, headers=headers)
    assert r.status_code == 413, (service, method, path, r.status_code, r.text[:200])
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 413


# --- pagination ---------------------------------------------------------------------------------------------

#: GET operations that answer a list without a `limit`, and why their size is bounded anyway.
BOUNDED_WITHOUT_LIMIT = {
    ("policy", "/v1/modes"): "the current modes: one caretaker mode per jurisdiction plus crisis",
    ("routing", "/v1/assignments"): "filtered by one post_id: at most one assignment",
}


def _is_list(spec: dict[str, Any], operation: dict[str, Any]) -> bool:
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    return schema is not None and resolve(spec, schema).get("type") == "array"


def _limit_param(operation: dict[str, Any]) -> dict[str, Any] | None:
    return next((p for p in operation.get("parameters", []) if p["name"] == "limit"), None)


def test_every_list_endpoint_has_a_capped_limit_with_a_default() -> None:
    problems = []
    limited = 0
    for service, spec in SPECS.items():
        for path, operations in spec["paths"].items():
            operation = operations.get("get")
            if operation is None or not path.startswith("/v1"):
                continue
            param = _limit_param(operation)
            if param is None:
                if _is_list(spec, operation) and (service, path) not in BOUNDED_WITHOUT_LIMIT:
                    problems.append(f"{service} GET {path}: a list without a limit")
                continue
            limited += 1
            schema = param["schema"]
            if schema.get("maximum") != MAX_PAGE_SIZE or schema.get("default") is None:
                problems.append(f"{service} GET {path}: limit {schema}")
            elif schema["default"] > MAX_PAGE_SIZE:
                problems.append(f"{service} GET {path}: default above the cap")
    assert not problems, "\n".join(problems)
    assert limited >= 10


@pytest.mark.kafka
async def test_a_limit_above_the_cap_is_422_naming_it(
    platform: tuple[dict[str, FastAPI], dict[str, httpx.AsyncClient]],
) -> None:
    _, clients = platform
    admin = bearer("admin", subject="pagination")
    checked, failures = 0, []
    for op in v1_operations():
        operation = SPECS[op.service]["paths"][op.path].get(op.method.lower(), {})
        if _limit_param(operation) is None:
            continue
        checked += 1
        client = clients[op.service]
        over = await client.get(op.concrete(), params={"limit": MAX_PAGE_SIZE + 1}, headers=admin)
        fields = {e["field"] for e in over.json().get("errors", [])} if over.status_code == 422 else set()
        if "query.limit" not in fields:
            failures.append(f"{op.service} GET {op.path}: limit={MAX_PAGE_SIZE + 1} -> {over.status_code}")
    assert checked >= 10
    assert not failures, "\n".join(failures)
    assert DEFAULT_PAGE_SIZE <= MAX_PAGE_SIZE


# --- rate limit ---------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire("a") == pytest.approx(0.5)
    assert bucket.acquire("b") == 0.0  # another key has its own bucket
    clock.now += 0.5
    assert bucket.acquire("a") == 0.0
    assert bucket.acquire("a") > 0
    clock.now += 100  # idle: refills to the burst, not beyond
    assert [bucket.acquire("a") for _ in range(4)][-1] > 0


def test_token_bucket_memory_is_bounded() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, max_keys=100, clock=FakeClock())
    for i in range(1000):
        bucket.acquire(f"k{i}")
    assert len(bucket) == 100


def test_limiter_gives_whole_seconds_and_systems_their_own_budget() -> None:
    clock = FakeClock()
    limiter = PrincipalRateLimiter(
        RateLimitSettings(requests_per_second=0.25, burst=1, system_requests_per_second=100, system_burst=5),
        clock=clock,
    )
    assert limiter.retry_after("p", system=False) == 0
    assert limiter.retry_after("p", system=False) == 4
    assert [limiter.retry_after("s", system=True) for _ in range(5)] == [0] * 5
    assert limiter.retry_after("s", system=True) == 1  # 10 ms, rounded up to the header's 1 s
    off = PrincipalRateLimiter(RateLimitSettings(enabled=False, burst=1, requests_per_second=0.001))
    assert [off.retry_after("p", system=False) for _ in range(10)] == [0] * 10


#: An operation per service that the role below may not call (403 when not limited).
FORBIDDEN_FOR_RESPONDER = {
    "ingest": ("POST", "/v1/posts"),
    "policy": ("POST", "/v1/modes"),
    "routing": ("POST", "/v1/routing-rules"),
    "metrics": ("GET", "/v1/ops/status"),
}


@pytest.mark.kafka
@pytest.mark.parametrize("service", list(FACTORIES))
async def test_a_principal_over_its_budget_gets_429_with_retry_after(
    service: str, build_apps: Callable[..., dict[str, FastAPI]], running: Callable[..., Any]
) -> None:
    limits = RateLimitSettings(burst=3, requests_per_second=0.5)
    app = build_apps(rate_limit=limits, consumers_enabled=False)[service]
    method, path = FORBIDDEN_FOR_RESPONDER[service]
    me, other = bearer("responder", subject="greedy"), bearer("responder", subject="patient")
    async with running(app) as client:
        first = [(await client.request(method, path, headers=me, json={})).status_code for _ in range(3)]
        assert first == [403, 403, 403]
        limited = await client.request(method, path, headers=me, json={})
        assert limited.status_code == 429, limited.text
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["status"] == 429
        # Someone else is not affected, and a bad token is still a 401 (authentication comes first).
        assert (await client.request(method, path, headers=other, json={})).status_code == 403
        bad = {"Authorization": "Bearer garbage"}
        assert (await client.request(method, path, headers=bad, json={})).status_code == 401


# --- metrics statement timeout ------------------------------------------------------------------------------


async def test_a_metrics_query_over_its_time_is_unavailable_not_an_error() -> None:
    """The asyncio bound every metrics query gets (the only bound on SQLite, which has no statement timeout:
    there the query itself runs on in its thread until it finishes, but the caller gets 503 in time)."""
    settings = MetricsSettings(query_timeout_ms=100)

    async def slow() -> None:
        await asyncio.sleep(5)

    started = asyncio.get_running_loop().time()
    with pytest.raises(Unavailable):
        await bounded(slow(), settings)
    assert asyncio.get_running_loop().time() - started < 3


@pytest.mark.kafka
@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="PostgreSQL's statement_timeout (SQLite: see the test above and docs/security.md)",
)
async def test_a_blocked_metrics_query_is_cancelled_by_postgresql_and_answered_503(
    make_settings: Callable[..., Any],
    running: Callable[..., Any],
) -> None:
    settings = make_settings(MetricsSettings, query_timeout_ms=300, consumers_enabled=False)
    async with running(create_metrics(settings)) as client:
        engine = create_async_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                # Another session holds the fact table: the backlog query waits until statement_timeout.
                await conn.execute(
                    text(f'LOCK TABLE "{settings.database_schema}".post_fact IN ACCESS EXCLUSIVE MODE')
                )
                started = asyncio.get_running_loop().time()
                r = await client.get("/v1/backlog", headers=bearer("ops", subject="timeout"))
                elapsed = asyncio.get_running_loop().time() - started
                await conn.rollback()
        finally:
            await engine.dispose()
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"]
    assert elapsed < 5
