"""What every service's HTTP surface does the same way: problem+json, limits, correlation ids, probes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc

from shared.errors import Conflict
from shared.http import create_service_app

router = APIRouter()


class Item(BaseModel):
    name: str = Field(max_length=10)
    size: int


@router.post("/items")
async def create_item(item: Item) -> Item:
    return item


@router.get("/conflict")
async def conflict() -> None:
    raise Conflict("Already there.")


@router.get("/db-down")
async def db_down() -> None:
    raise sa_exc.OperationalError("INSERT ...", {}, ConnectionRefusedError("connection refused"))


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals")


def make_app(*, database_up: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    async def db_check() -> None:
        if not database_up:
            raise ConnectionError("down")

    return create_service_app(
        title="t",
        description="t",
        lifespan=lifespan,
        routers=[router],
        readiness=lambda _app: {"database": db_check},
        max_body_bytes=2048,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


class TestProblemJson:
    async def test_validation_error_names_the_field_and_reason(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/items", json={"name": "x" * 11})
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["status"] == 422
        fields = {e["field"]: e["reason"] for e in body["errors"]}
        assert "body.name" in fields
        assert "10" in fields["body.name"]
        assert "body.size" in fields

    async def test_malformed_json_is_422_not_500(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/items", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"

    async def test_service_error_keeps_its_status_and_message(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/conflict")
        assert r.status_code == 409
        assert r.json() == {
            "type": "about:blank",
            "title": "Conflict",
            "status": 409,
            "detail": "Already there.",
            "instance": "/conflict",
        }

    async def test_database_outage_is_503_with_retry_after(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/db-down")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        assert r.headers["content-type"] == "application/problem+json"
        assert "INSERT" not in r.text

    async def test_unknown_route_is_problem_404(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/nowhere")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"

    async def test_unexpected_error_is_problem_500_without_internals(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/boom")
        assert r.status_code == 500
        assert r.headers["content-type"] == "application/problem+json"
        assert "secret internals" not in r.text


class TestBodyLimit:
    async def test_declared_oversize_body_is_413(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/items", content=b"x" * 4096, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/problem+json"

    async def test_streamed_oversize_body_is_413(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 1000

        r = await client.post("/items", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


class TestCorrelationId:
    async def test_is_echoed_when_given(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/healthz", headers={"X-Correlation-ID": "abc-123"})
        assert r.headers["x-correlation-id"] == "abc-123"

    async def test_is_made_when_missing_or_unsafe(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/healthz", headers={"X-Correlation-ID": "bad value\r\n"})
        assert r.headers["x-correlation-id"] != "bad value"
        assert len(r.headers["x-correlation-id"]) == 32


class TestProbes:
    async def test_healthz_and_metrics(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        await client.get("/healthz")
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert "switchboard_http_request_seconds" in metrics.text

    async def test_readyz_is_503_when_a_dependency_is_down(self) -> None:
        transport = httpx.ASGITransport(app=make_app(database_up=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "not_ready", "checks": {"database": "down: ConnectionError"}}

    async def test_readyz_is_200_when_all_is_well(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["status"] == "ready"

    def test_openapi_documents_the_probes(self) -> None:
        paths = make_app().openapi()["paths"]
        assert {"/healthz", "/readyz", "/metrics"} <= set(paths)
