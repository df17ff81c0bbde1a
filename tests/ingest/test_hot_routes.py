"""The posting routes' lean path (services.ingest.hot_routes) answers exactly as the FastAPI routes do.

A request with ``Content-Type: application/json`` takes the lean path; the same request with
``application/json; charset=utf-8`` is handed to FastAPI untouched. Comparing the two answers checks every
guarantee the lean path must keep: authentication, roles, the rate limit, problem+json errors, the status
codes and bodies, the correlation id and the latency histogram's route label.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from prometheus_client import REGISTRY

from services.ingest import endpoints
from services.ingest.config import IngestSettings
from services.ingest.hot_routes import hot_route
from services.ingest.main import create_app
from shared.config import RateLimitSettings

pytestmark = pytest.mark.kafka

HOT = "application/json"
FASTAPI = "application/json; charset=utf-8"  # a media type the lean path leaves to FastAPI


def post(external_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "platform": "webform",
        "external_id": external_id,
        "account": "contact-us",
        "text": f"Streetlight out on Main St ({external_id})",
        "author": {"id": "resident-1"},
        "created_at": "2026-11-26T09:00:00+11:00",
    }
    body.update(changes)
    return body


@pytest.fixture
async def client(
    make_settings: Callable[..., IngestSettings],
    running: Callable[[Any], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(make_settings(IngestSettings))) as c:
        yield c


async def send(
    client: httpx.AsyncClient,
    path: str,
    body: bytes | dict[str, Any],
    *,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post(path, content=content, headers={"content-type": content_type, **(headers or {})})


def comparable(response: httpx.Response) -> tuple[int, str, Any, str | None, str | None]:
    return (
        response.status_code,
        response.headers["content-type"],
        response.json(),
        response.headers.get("www-authenticate"),
        response.headers.get("retry-after"),
    )


class TestErrorsAreFastAPIs:
    @pytest.mark.parametrize(
        ("path", "body", "roles"),
        [
            pytest.param("/v1/posts", post("e1"), None, id="no-token"),
            pytest.param("/v1/posts", post("e2"), ("responder",), id="wrong-role"),
            pytest.param("/v1/posts", b'{"platform": "webform",', ("agency_system",), id="broken-json"),
            pytest.param("/v1/posts", b'{"platform": ', None, id="broken-json-no-token"),
            pytest.param("/v1/posts", b"[1, 2]", ("agency_system",), id="not-an-object"),
            pytest.param("/v1/posts", post("e3", text=None), ("agency_system",), id="invalid-field"),
            pytest.param("/v1/posts", post("e4", extra=1), ("agency_system",), id="unknown-field"),
            pytest.param("/v1/posts", post("e5", text="\u200b\u200b"), ("agency_system",), id="empty-text"),
            pytest.param("/v1/posts:batch", {"posts": []}, ("agency_system",), id="empty-batch"),
            pytest.param("/v1/posts:batch", {"posts": [1]}, ("responder",), id="batch-wrong-role"),
            pytest.param(
                "/v1/posts:batch",
                {"posts": [{"platform": "nowhere"}, post("e6", text="\u200b")]},
                ("agency_system",),
                id="batch-all-items-rejected",
            ),
        ],
    )
    async def test_the_same_status_body_and_headers_on_both_paths(
        self,
        client: httpx.AsyncClient,
        token: Callable[..., dict[str, str]],
        path: str,
        body: bytes | dict[str, Any],
        roles: tuple[str, ...] | None,
    ) -> None:
        headers = token(*roles) if roles else None
        lean = await send(client, path, body, content_type=HOT, headers=headers)
        framework = await send(client, path, body, content_type=FASTAPI, headers=headers)
        assert lean.status_code >= 400 or path.endswith(":batch")
        assert comparable(lean) == comparable(framework)


class TestAcceptedPosts:
    async def test_single_post_answers_202_with_fastapis_body_and_dedupes(
        self, client: httpx.AsyncClient, token: Callable[..., dict[str, str]]
    ) -> None:
        headers = token("agency_system")
        lean = await send(client, "/v1/posts", post("a1"), content_type=HOT, headers=headers)
        framework = await send(client, "/v1/posts", post("a2"), content_type=FASTAPI, headers=headers)
        again = await send(client, "/v1/posts", post("a1"), content_type=HOT, headers=headers)
        assert (lean.status_code, framework.status_code, again.status_code) == (202, 202, 202)
        assert lean.headers["content-type"] == framework.headers["content-type"] == "application/json"
        assert set(lean.json()) == set(framework.json()) == {"id", "duplicate"}
        assert again.json() == {"id": lean.json()["id"], "duplicate": True}
        stored = await client.get(f"/v1/posts/{lean.json()['id']}", headers=headers)
        assert stored.status_code == 200
        assert stored.json()["external_id"] == "a1"

    async def test_batch_answers_207_with_the_same_items_as_fastapi(
        self, client: httpx.AsyncClient, token: Callable[..., dict[str, str]]
    ) -> None:
        headers = token("agency_system")

        def batch(prefix: str) -> dict[str, Any]:
            return {"posts": [post(f"{prefix}-1"), {"platform": "nowhere"}, post(f"{prefix}-1")]}

        lean = await send(client, "/v1/posts:batch", batch("b"), content_type=HOT, headers=headers)
        framework = await send(client, "/v1/posts:batch", batch("c"), content_type=FASTAPI, headers=headers)
        assert lean.status_code == framework.status_code == 207

        def shape(body: dict[str, Any]) -> Any:
            items = [{k: v for k, v in i.items() if k not in ("id", "external_id")} for i in body["items"]]
            return {**body, "items": items}

        assert shape(lean.json()) == shape(framework.json())
        assert [i["status"] for i in lean.json()["items"]] == ["accepted", "rejected", "duplicate"]

    async def test_correlation_id_and_latency_histogram_under_the_route_template(
        self, client: httpx.AsyncClient, token: Callable[..., dict[str, str]]
    ) -> None:
        def observed() -> float:
            labels = {"method": "POST", "route": "/v1/posts", "status": "202"}
            return REGISTRY.get_sample_value("switchboard_http_request_seconds_count", labels) or 0.0

        before = observed()
        r = await send(
            client,
            "/v1/posts",
            post("h1"),
            content_type=HOT,
            headers={**token("agency_system"), "X-Correlation-ID": "trace-123"},
        )
        assert r.status_code == 202
        assert r.headers["x-correlation-id"] == "trace-123"
        assert observed() == before + 1


class TestRateLimit:
    async def test_each_request_is_charged_once_whichever_path_answers(
        self,
        make_settings: Callable[..., IngestSettings],
        running: Callable[[Any], AbstractAsyncContextManager[httpx.AsyncClient]],
        token: Callable[..., dict[str, str]],
    ) -> None:
        limits = RateLimitSettings(system_burst=3, system_requests_per_second=0.001)
        async with running(create_app(make_settings(IngestSettings, rate_limit=limits))) as c:
            headers = token("agency_system", subject="relay-7")
            # Three requests: accepted on the lean path, invalid (handed to FastAPI after the gate),
            # accepted through FastAPI. A fourth is over the budget on either path.
            first = await send(c, "/v1/posts", post("r1"), content_type=HOT, headers=headers)
            second = await send(c, "/v1/posts", post("r2", text=None), content_type=HOT, headers=headers)
            third = await send(c, "/v1/posts", post("r3"), content_type=FASTAPI, headers=headers)
            assert (first.status_code, second.status_code, third.status_code) == (202, 422, 202)
            lean = await send(c, "/v1/posts", post("r4"), content_type=HOT, headers=headers)
            framework = await send(c, "/v1/posts", post("r5"), content_type=FASTAPI, headers=headers)
            assert lean.status_code == 429
            assert comparable(lean) == comparable(framework)


class TestOnlyPlainRoutesAreServed:
    def test_a_route_with_path_parameters_is_refused(self) -> None:
        route = next(
            r for r in endpoints.router.routes if isinstance(r, APIRoute) and r.path == "/v1/posts/{post_id}"
        )
        with pytest.raises(ValueError, match="cannot be served"):
            hot_route(route)

    def test_the_posting_routes_are_served(self) -> None:
        paths = {
            hot_route(r).route.path
            for r in endpoints.router.routes
            if isinstance(r, APIRoute) and r.path in ("/v1/posts", "/v1/posts:batch")
        }
        assert paths == {"/v1/posts", "/v1/posts:batch"}
