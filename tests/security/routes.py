"""The four services' route tables, and the roles each /v1 operation lets through, read from the apps."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from services.ingest.main import create_app as create_ingest
from services.metrics.main import create_app as create_metrics
from services.policy.main import create_app as create_policy
from services.routing.main import create_app as create_routing
from shared.auth import ALLOWED_ROLES_ATTRIBUTE, Role

FACTORIES: dict[str, Callable[..., FastAPI]] = {
    "ingest": create_ingest,
    "policy": create_policy,
    "routing": create_routing,
    "metrics": create_metrics,
}
#: Routes that authenticate another way (a platform's own signature), declared in their OpenAPI.
ALTERNATIVE_AUTH_KEY = "x-switchboard-auth"


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str  # the template, e.g. /v1/assignments/{assignment_id}
    route: APIRoute

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.service, self.method, self.path)

    def concrete(self, value: str = "x") -> str:
        return re.sub(r"\{[^}]+\}", value, self.path)

    @property
    def has_object_id(self) -> bool:
        return "{" in self.path


def _role_gates(dependant: Dependant) -> Iterator[frozenset[Role]]:
    for sub in dependant.dependencies:
        allowed = getattr(sub.call, ALLOWED_ROLES_ATTRIBUTE, None)
        if allowed is not None:
            yield frozenset(allowed)
        yield from _role_gates(sub)


def allowed_roles(route: APIRoute) -> frozenset[Role] | None:
    """The roles every ``require_roles`` gate of the route lets through (None: the route has no gate)."""
    gates = list(_role_gates(route.dependant))
    if not gates:
        return None
    result = frozenset(Role)
    for gate in gates:
        result &= gate
    return result


def api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, including those of included routers (FastAPI >= 0.16x keeps them behind a wrapper)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)


def v1_operations(apps: dict[str, FastAPI] | None = None) -> list[Operation]:
    apps = apps or {name: factory() for name, factory in FACTORIES.items()}
    out: list[Operation] = []
    for service, app in apps.items():
        documented = app.openapi()["paths"]
        for route in api_routes(app.routes):
            if not route.path.startswith("/v1"):
                continue
            for method in sorted(route.methods):
                if documented.get(route.path, {}).get(method.lower(), {}).get(ALTERNATIVE_AUTH_KEY):
                    continue
                out.append(Operation(service, method, route.path, route))
    return out
