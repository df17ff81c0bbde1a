"""App factory: every service gets /healthz, /readyz, /metrics, problem+json errors, a body-size limit,
correlation ids and request logging/metrics, the same way."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.middleware import Middleware
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


#: ``FastAPI(telemetry=...)``: every signal of FastAPI's native OpenTelemetry support off.
NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class _BodyTooLarge(Exception):
    pass


_QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})
_CORRELATION_HEADER_KEY = CORRELATION_HEADER.lower().encode()


class RequestContextMiddleware:
    """Pure ASGI: correlation id in and out, body-size limit (413), latency histogram, one log line."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # (method, route template, status) -> histogram child: ``labels()`` takes a lock and validates its
        # arguments on every call.
        self._observers: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        raw_cid = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == _CORRELATION_HEADER_KEY:
                raw_cid = value
        cid = raw_cid[:100].decode("latin-1")
        if not (cid and cid.replace("-", "").isalnum()):
            cid = new_correlation_id()
        started = time.perf_counter()
        status = 500
        response_started = False
        limit = self.max_body_bytes

        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._send_413(scope, receive, send, cid)
            return

        received = 0
        answered_413 = False
        cid_header = (b"x-correlation-id", cid.encode())

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
                message["headers"] = [*message.get("headers", ()), cid_header]
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(correlation_id=cid)
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
            method = scope["method"]
            key = (method, template, status)
            observer = self._observers.get(key)
            if observer is None:
                observer = HTTP_REQUEST_SECONDS.labels(method, template, str(status))
                if len(self._observers) < 10_000:
                    self._observers[key] = observer
            observer.observe(elapsed)
            if template not in _QUIET_ROUTES:
                log.info(
                    "http_request", method=method, route=template, status=status, ms=round(elapsed * 1000, 2)
                )
            structlog.contextvars.reset_contextvars(**tokens)

    async def _send_413(self, scope: Scope, receive: Receive, send: Send, cid: str) -> None:
        response = problem_response(
            status=413,
            detail=f"The request body is larger than {self.max_body_bytes} bytes.",
            headers={CORRELATION_HEADER: cid},
        )
        await response(scope, receive, send)


def add_inner_middleware(app: FastAPI, middleware: Callable[..., ASGIApp], **options: Any) -> None:
    """Add a pure ASGI middleware *inside* ``RequestContextMiddleware``: its requests keep the correlation id,
    the body-size limit, the latency histogram and the log line, and it may set ``scope["route"]`` (the
    route template those record). ``add_middleware`` would put it outside, where none of that applies yet."""
    app.user_middleware.append(Middleware(middleware, **options))


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
        # FastAPI's native OpenTelemetry: we export Prometheus metrics and JSON logs instead. Left on, it
        # asks the OpenTelemetry API for its global providers on every request (reading os.environ), about
        # 2% of ingest's CPU per post with no provider configured.
        telemetry=NO_NATIVE_TELEMETRY,
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
