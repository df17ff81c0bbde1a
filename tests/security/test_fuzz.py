"""schemathesis (>= 4) fuzzes every operation of the four services in-process, as an admin, against a real
database and the real broker: no 5xx, every response matches its OpenAPI schema, invalid input is refused.

Positive and negative examples (schemathesis' default modes); ``MAX_EXAMPLES`` per operation (5; the
FUZZ_MAX_EXAMPLES environment variable raises it for a nightly run) keeps a run near 50 s of CPU.
Not skipped when schemathesis is missing: it is a dev dependency.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.config import IngestSettings
from services.ingest.main import create_app as create_ingest
from services.metrics.config import MetricsSettings
from services.metrics.main import create_app as create_metrics
from services.policy.config import PolicySettings
from services.policy.main import create_app as create_policy
from services.routing.config import RoutingSettings
from services.routing.main import create_app as create_routing
from shared.broker import EmbeddedBroker
from shared.config import AuthSettings, BaseServiceSettings, KafkaSettings, RateLimitSettings
from tests.conftest import TEST_SECRET, make_token
from tests.security.routes import FACTORIES

pytestmark = [
    pytest.mark.kafka,
    # schemathesis' own strategies use `random`; hypothesis warns about it on every example.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "5"))
ADMIN = {"Authorization": f"Bearer {make_token('admin', subject='fuzzer')}"}
CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection]


def _run(coro: Any) -> None:
    """Run a coroutine to completion on a fresh loop in another thread (the test's own loop is busy)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def fuzz_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FastAPI]]:
    pg_url = os.environ.get("TEST_DATABASE_URL")
    schemas: list[str] = []
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with EmbeddedBroker() as broker:
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers,
            topic_partitions=1,
            session_timeout_ms=2000,
            heartbeat_interval_ms=400,
            outbox_poll_interval_ms=200,
        )

        def settings_for(cls: type[BaseServiceSettings], name: str, **extra: Any) -> Any:
            if pg_url:
                schema = f"t_fuzz_{name}_{uuid.uuid4().hex[:8]}"
                schemas.append(schema)
                db: dict[str, Any] = {"database_url": pg_url, "database_schema": schema}
            else:
                db = {"database_url": f"sqlite+aiosqlite:///{tmp / name}.db"}
            return cls(
                **db,
                kafka=kafka,
                auth=AuthSettings(dev_secret=TEST_SECRET),
                # The fuzzer is one principal sending hundreds of requests a second.
                rate_limit=RateLimitSettings(enabled=False),
                **extra,
            )

        policy = create_policy(settings_for(PolicySettings, "policy"))
        apps = {
            "ingest": create_ingest(settings_for(IngestSettings, "ingest")),
            "policy": policy,
            "routing": create_routing(
                settings_for(RoutingSettings, "routing"), policy_transport=httpx.ASGITransport(app=policy)
            ),
            # ops/status probes no other service here (they are not listening).
            "metrics": create_metrics(settings_for(MetricsSettings, "metrics", service_urls={})),
        }
        try:
            yield apps
        finally:
            # schemathesis starts each app's lifespan on first use and keeps it; stop them before the broker.
            schemathesis_asgi.shutdown_lifespans()
    if pg_url and schemas:

        async def drop() -> None:
            engine = create_async_engine(pg_url)
            async with engine.begin() as conn:
                for schema in schemas:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await engine.dispose()

        _run(drop())


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# The documents of apps that are never started; the started ones (fixture) answer the calls. schemathesis'
# own lazy fixture loader does not work with pytest 9 (it sets Function._nodeid).
SCHEMAS = {name: schemathesis.openapi.from_dict(factory().openapi()) for name, factory in FACTORIES.items()}


def _fuzz(case: schemathesis.Case, app: FastAPI) -> None:
    case.call_and_validate(app=app, headers=ADMIN, checks=CHECKS)


@SCHEMAS["ingest"].parametrize()
@FUZZ_SETTINGS
def test_fuzz_ingest(case: schemathesis.Case, fuzz_apps: dict[str, FastAPI]) -> None:
    _fuzz(case, fuzz_apps["ingest"])


@SCHEMAS["policy"].parametrize()
@FUZZ_SETTINGS
def test_fuzz_policy(case: schemathesis.Case, fuzz_apps: dict[str, FastAPI]) -> None:
    _fuzz(case, fuzz_apps["policy"])


@SCHEMAS["routing"].parametrize()
@FUZZ_SETTINGS
def test_fuzz_routing(case: schemathesis.Case, fuzz_apps: dict[str, FastAPI]) -> None:
    _fuzz(case, fuzz_apps["routing"])


@SCHEMAS["metrics"].parametrize()
@FUZZ_SETTINGS
def test_fuzz_metrics(case: schemathesis.Case, fuzz_apps: dict[str, FastAPI]) -> None:
    _fuzz(case, fuzz_apps["metrics"])
