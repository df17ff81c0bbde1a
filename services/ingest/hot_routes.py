"""The two posting routes' successful requests, served without FastAPI's per-request machinery.

``POST /v1/posts`` and ``POST /v1/posts:batch`` are nearly all of ingest's traffic. FastAPI spends more CPU
on one of those requests than ingest's own work does: a routing layer per router, three wrappers around the
route, the dependency solver walking the route's dependency tree, and the response model's serialiser
(py-spy, docs/benchmarks.md). ``HotPostRoutes`` sits inside the request-context middleware (correlation id,
body limit, latency histogram, log line: ``shared.http``) and, for those two routes, does what the FastAPI
route does on its successful path, in the same order and with the same functions:

1. read the body; parse it as JSON (``application/json`` only);
2. authenticate and authorise with the route's own ``require_roles`` gate (token, roles, rate limit);
3. validate the body with the route's body model;
4. call the route's endpoint function and serialise its result like FastAPI (response model, status code).

Whatever is not that successful path is handed, with the body already read, to the FastAPI application
unchanged: another content type, an empty body, JSON that does not parse, a body that does not validate, a
client that went away while sending. FastAPI then answers exactly as it always has (its 400/422 problems),
and the principal is not charged twice: ``shared.auth.authenticated`` runs once per request. Errors that
the endpoint or the gate raise are rendered by the application's own exception handlers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import ALLOWED_ROLES_ATTRIBUTE, authenticated

Endpoint = Callable[..., Awaitable[BaseModel]]
Gate = Callable[[Request], Awaitable[Any]]

#: Content types served here; anything else goes to FastAPI (which also accepts ``+json`` and parameters).
JSON_CONTENT_TYPES = frozenset({b"application/json"})


@dataclass(frozen=True)
class HotRoute:
    route: APIRoute
    endpoint: Endpoint
    gate: Gate
    body_model: type[BaseModel]
    response_model: type[BaseModel]
    status_code: int
    #: The endpoint's parameter names for the body, the request and the principal.
    body_name: str
    request_name: str
    principal_name: str


def hot_route(route: APIRoute) -> HotRoute:
    """The parts of ``route`` served here. The route must be ``endpoint(body, request, principal)`` with one
    ``require_roles`` gate, a JSON body model and a response model: anything else is refused at start-up."""
    dependant = route.dependant
    gates = [d for d in dependant.dependencies if hasattr(d.call, ALLOWED_ROLES_ATTRIBUTE)]
    # Besides the gate, only a router-level ``authenticated`` (which the gate runs itself) is allowed.
    others = [d for d in dependant.dependencies if d not in gates and d.call is not authenticated]
    gate = gates[0].call if len(gates) == 1 else None
    principal_name = gates[0].name if len(gates) == 1 else None
    request_name = dependant.request_param_name
    body = dependant.body_params
    body_model = body[0].field_info.annotation if len(body) == 1 else None
    response_model = route.response_model
    status_code = route.status_code
    if (
        gate is None
        or principal_name is None
        or request_name is None
        or others
        or dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or not (isinstance(body_model, type) and issubclass(body_model, BaseModel))
        or not (isinstance(response_model, type) and issubclass(response_model, BaseModel))
        or status_code is None
    ):
        raise ValueError(f"{route.path} cannot be served as a hot route")
    return HotRoute(
        route=route,
        endpoint=route.endpoint,
        gate=gate,
        body_model=body_model,
        response_model=response_model,
        status_code=status_code,
        body_name=body[0].name,
        request_name=request_name,
        principal_name=principal_name,
    )


def _route_path(scope: Scope) -> str:
    # As Starlette's router matches: the path below root_path.
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and path[len(root_path) :].startswith("/"):
        return path[len(root_path) :]
    return path


class HotPostRoutes:
    """Pure ASGI middleware serving ``routes`` (POST only) as described in the module docstring."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[APIRoute]) -> None:
        self.app = app
        self.routes = {r.path: hot_route(r) for r in routes if r.methods and "POST" in r.methods}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.routes.get(_route_path(scope)) if scope["type"] == "http" else None
        if hot is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
        # 1. The body, every message kept so that FastAPI can be given the request as it came.
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                await self._fastapi(scope, receive, send, messages)  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if not body or content_type not in JSON_CONTENT_TYPES:
            await self._fastapi(scope, receive, send, messages)
            return
        try:
            # What FastAPI's Request.json() does (not orjson: it reads integers beyond 64 bits as floats).
            payload = json.loads(body)
        except ValueError:
            await self._fastapi(scope, receive, send, messages)
            return
        scope["route"] = hot.route  # the route template of the latency histogram and the log line
        request = Request(scope, receive)
        app: FastAPI = scope["app"]
        try:
            # 2. Token, roles and rate limit: the route's own gate, before the body is validated (FastAPI's
            # order: dependencies first, then the body's validation errors).
            principal = await hot.gate(request)
            # 3. The body model, as FastAPI validates it.
            try:
                data = hot.body_model.model_validate(payload, from_attributes=True)
            except ValidationError:
                await self._fastapi(scope, receive, send, messages)
                return
            # 4. The endpoint, and its answer serialised like FastAPI's response model does.
            result = await hot.endpoint(
                **{hot.body_name: data, hot.request_name: request, hot.principal_name: principal}
            )
        except Exception as exc:
            handler = _handler_for(app, exc)
            if handler is None:
                raise  # ServerErrorMiddleware's 500 problem, as for any route
            await (await handler(request, exc))(scope, receive, send)
            return
        if type(result) is not hot.response_model:
            raise TypeError(f"{hot.route.path} returned {type(result).__name__}")
        content = result.model_dump_json(
            by_alias=bool(hot.route.response_model_by_alias),
            exclude_unset=hot.route.response_model_exclude_unset,
            exclude_defaults=hot.route.response_model_exclude_defaults,
            exclude_none=hot.route.response_model_exclude_none,
        ).encode()
        response = Response(content, status_code=hot.status_code, media_type="application/json")
        await response(scope, receive, send)

    async def _fastapi(self, scope: Scope, receive: Receive, send: Send, messages: list[Message]) -> None:
        """The request, body included, to the FastAPI application (its routing, validation and errors)."""
        pending = list(messages)

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        await self.app(scope, replay, send)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _handler_for(app: FastAPI, exc: Exception) -> Handler | None:
    """The application's handler of ``exc``, looked up as Starlette's ExceptionMiddleware does; None for the
    catch-all ``Exception`` handler, which Starlette runs in ServerErrorMiddleware (outermost)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return handler  # type: ignore[return-value]
    return None
