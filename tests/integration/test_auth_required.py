"""Every /v1 operation of every service refuses a request without a valid token, before doing any work.

Generated from the route tables, so a new endpoint is covered the day it is added. The apps are not
started: a route that touched the database before checking the token would fail here with a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import jwt
import pytest
from fastapi import FastAPI

from services.ingest.main import create_app as create_ingest
from services.metrics.main import create_app as create_metrics
from services.policy.main import create_app as create_policy
from services.routing.main import create_app as create_routing
from shared.auth import TokenVerifier
from shared.config import AuthSettings
from tests.conftest import TEST_SECRET, make_token

FACTORIES: dict[str, Callable[[], FastAPI]] = {
    "ingest": create_ingest,
    "policy": create_policy,
    "routing": create_routing,
    "metrics": create_metrics,
}
#: Routes that authenticate another way (a platform's own signature), declared in their OpenAPI.
ALTERNATIVE_AUTH_KEY = "x-switchboard-auth"


def v1_operations() -> Iterator[tuple[str, str, str]]:
    for service, factory in FACTORIES.items():
        for path, operations in factory().openapi()["paths"].items():
            if not path.startswith("/v1"):
                continue
            for method, operation in operations.items():
                if operation.get(ALTERNATIVE_AUTH_KEY):
                    continue
                yield service, method.upper(), re.sub(r"\{[^}]+\}", "x", path)


OPERATIONS = list(v1_operations())

BAD_TOKENS = {
    "missing": None,
    "not-bearer": "Basic dXNlcjpwYXNz",
    "garbage": "Bearer garbage",
    "wrong-secret": "Bearer "
    + jwt.encode(
        {"sub": "x", "roles": ["admin"], "iss": "switchboard", "aud": "switchboard", "exp": 9999999999},
        "another-secret-another-secret-another-secret-0123456789",
        algorithm="HS256",
    ),
    "expired": "Bearer "
    + jwt.encode(
        {"sub": "x", "roles": ["admin"], "iss": "switchboard", "aud": "switchboard", "exp": 1000},
        TEST_SECRET,
        algorithm="HS256",
    ),
}


def test_the_route_tables_were_found() -> None:
    assert {s for s, _, _ in OPERATIONS} == set(FACTORIES)
    assert len(OPERATIONS) >= 4


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
@pytest.mark.parametrize(("service", "method", "path"), OPERATIONS)
async def test_is_401_without_a_valid_token(service: str, method: str, path: str, kind: str) -> None:
    app = FACTORIES[service]()
    app.state.token_verifier = TokenVerifier(AuthSettings(dev_secret=TEST_SECRET))
    headers = {"Authorization": BAD_TOKENS[kind]} if BAD_TOKENS[kind] else {}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.request(method, path, headers=headers, json={})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("service", "method", "path"), OPERATIONS)
async def test_a_valid_token_passes_the_gate(service: str, method: str, path: str) -> None:
    """The same request with a valid token gets past authentication (whatever it answers next)."""
    app = FACTORIES[service]()
    app.state.token_verifier = TokenVerifier(AuthSettings(dev_secret=TEST_SECRET))
    headers = {"Authorization": f"Bearer {make_token('admin')}"}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.request(method, path, headers=headers, json={})
    assert response.status_code != 401
