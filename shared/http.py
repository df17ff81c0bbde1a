"""App factory: every service gets /healthz, /readyz, /metrics, problem+json errors, a body-size limit,
correlation ids and request logging/metrics, the same way."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config import RateLimitSettings
from shared.errors import install_error_handlers, problem_response, problem_responses
from shared.logging import CORRELATION_HEADER, get_logger, new_correlation_id
from shared.observability import HTTP_REQUEST_SECONDS
from shared.ratelimit import PrincipalRateLimiter

log = get_logger("http")

ReadinessCheck = Callable[[], Awaitable[None]]

#: Largest page any list endpoint returns; more is a 422 naming ``query.limit``.
MAX_PAGE_SIZE = 200
#: Page size when the caller does not say.
DEFAULT_PAGE_SIZE = 50
#: The ``limit`` query parameter of every list endpoint (``limit: PageLimit = DEFAULT_PAGE_SIZE``).
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size (at most {MAX_PAGE_SIZE}).")]


class _BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    """Pure ASGI: correlation id in and out, body-size limit (413), latency histogram, one log line."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        raw_cid = headers.get(CORRELATION_HEADER.lower().encode(), b"").decode("latin-1")[:100]
        cid = raw_cid if raw_cid and raw_cid.replace("-", "").isalnum() else new_correlation_id()
        started = time.perf_counter()
        status = 500
        response_started = False
        limit = self.max_body_bytes

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._send_413(scope, receive, send, cid)
            return

        received = 0
        answered_413 = False

        async def limited_receive() -> Message:
            nonlocal received, answered_413, status
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now: the framework would turn an error raised while reading into a 400.
                    if not response_started and not answered_413:
                        answered_413 = True
                        status = 413
                        await self._send_413(scope, receive, send, cid)
                    raise _BodyTooLarge
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if answered_413:
                return  # the app's own answer to the aborted read is dropped
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-correlation-id", cid.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=cid):
            try:
                await self.app(scope, limited_receive, send_wrapper)
            except _BodyTooLarge:
                if not response_started and not answered_413:
                    status = 413
                    await self._send_413(scope, receive, send, cid)
            finally:
                elapsed = time.perf_counter() - started
                route = scope.get("route")
                template = getattr(route, "path", "unmatched")
                HTTP_REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(elapsed)
                if template not in ("/metrics", "/healthz", "/readyz"):
                    log.info(
                        "http_request",
                        method=scope["method"],
                        route=template,
                        status=status,
                        ms=round(elapsed * 1000, 2),
                    )

    async def _send_413(self, scope: Scope, receive: Receive, send: Send, cid: str) -> None:
        response = problem_response(
            status=413,
            detail=f"The request body is larger than {self.max_body_bytes} bytes.",
            headers={CORRELATION_HEADER: cid},
        )
        await response(scope, receive, send)


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


def create_service_app(
    *,
    title: str,
    description: str,
    version: str = "0.1.0",
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]],
    routers: Sequence[APIRouter],
    readiness: Callable[[FastAPI], dict[str, ReadinessCheck]],
    max_body_bytes: int,
    rate_limit: RateLimitSettings | None = None,
) -> FastAPI:
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        # Any authenticated route may answer 429 (per-principal budget, shared.ratelimit).
        responses=problem_responses(429),
    )
    # Checked by shared.auth.authenticated once the token is verified.
    app.state.rate_limiter = PrincipalRateLimiter(rate_limit or RateLimitSettings())
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=max_body_bytes)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: database and broker reachable (503 if not).",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency is not reachable."}},
    )
    async def readyz(request: Request, response: Response) -> Readiness:
        results: dict[str, str] = {}
        for name, check in readiness(request.app).items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"down: {type(exc).__name__}"
        ok = all(v == "ok" for v in results.values())
        response.status_code = 200 if ok else 503
        return Readiness(status="ready" if ok else "not_ready", checks=results)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics in the text exposition format.")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
