"""Fixtures shared by every test.

- ``broker``: a fresh embedded Kafka-protocol broker (Tansu) per test, on a free loopback port, so tests never
  see each other's topics or consumer groups; ``KAFKA_BOOTSTRAP_SERVERS`` points the tests at a real cluster
  instead (then topics are shared and tests rely on unique ids).
- ``db``: where a service's tables live: a SQLite file under the test's tmp dir, or, with
  ``TEST_DATABASE_URL`` set (CI), a fresh PostgreSQL schema dropped afterwards.
- ``make_settings``: a service's settings pointed at both, with an HS256 dev secret for tokens.
- ``running``: runs an app's lifespan and gives an httpx client that talks to it in-process.
- ``token``: mints a bearer token for given roles and departments.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.auth import mint_dev_token
from shared.broker import EmbeddedBroker
from shared.config import AuthSettings, BaseServiceSettings, KafkaSettings

TEST_SECRET = "test-secret-not-for-production-0123456789"
S = TypeVar("S", bound=BaseServiceSettings)


@pytest.fixture
def broker() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    with EmbeddedBroker() as b:
        yield b.bootstrap_servers


@pytest.fixture
def kafka_settings(broker: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=broker,
        fetch_max_wait_ms=10,
        topic_partitions=3,
        handler_retry_backoff_ms=10,
        outbox_poll_interval_ms=200,
        # Tansu answers a JoinGroup after half the session timeout: keep it short so tests start fast.
        session_timeout_ms=2000,
        heartbeat_interval_ms=400,
    )


@dataclass(frozen=True)
class DatabaseTarget:
    url: str
    schema: str | None

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")


@pytest.fixture
async def db_factory(tmp_path: Path) -> AsyncIterator[Callable[[str], DatabaseTarget]]:
    """Makes one isolated database per service name, cleaned up after the test."""
    pg_url = os.environ.get("TEST_DATABASE_URL")
    schemas: list[str] = []

    def make(name: str) -> DatabaseTarget:
        if pg_url:
            schema = f"t_{name}_{uuid.uuid4().hex[:10]}"
            schemas.append(schema)
            return DatabaseTarget(pg_url, schema)
        return DatabaseTarget(f"sqlite+aiosqlite:///{tmp_path / name}.db", None)

    yield make
    if pg_url and schemas:
        engine = create_async_engine(pg_url)
        async with engine.begin() as conn:
            for schema in schemas:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


@pytest.fixture
def make_settings(
    db_factory: Callable[[str], DatabaseTarget], kafka_settings: KafkaSettings
) -> Callable[..., Any]:
    def make(cls: type[S], *, name: str | None = None, **overrides: Any) -> S:
        db = db_factory(name or cls.__name__.removesuffix("Settings").lower())
        values: dict[str, Any] = {
            "database_url": db.url,
            "database_schema": db.schema,
            "kafka": kafka_settings,
            "auth": AuthSettings(dev_secret=TEST_SECRET),
        }
        values.update(overrides)
        return cls(**values)

    return make


@pytest.fixture
def running() -> Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]:
    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client

    return run


def make_token(*roles: str, departments: tuple[str, ...] = (), subject: str = "tester") -> str:
    return mint_dev_token(
        secret=TEST_SECRET, subject=subject, roles=list(roles), departments=list(departments)
    )


@pytest.fixture
def token() -> Callable[..., dict[str, str]]:
    """``token("responder", departments=("transport",))`` -> Authorization headers."""

    def headers(*roles: str, departments: tuple[str, ...] = (), subject: str = "tester") -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(*roles, departments=departments, subject=subject)}"}

    return headers
