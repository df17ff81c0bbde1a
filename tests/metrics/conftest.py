"""Metrics fixtures: a migrated metrics database, and the metrics app without consumers (fed directly)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.metrics import service
from services.metrics.main import MIGRATIONS
from shared.contracts.envelope import Envelope
from shared.db import Database
from shared.db.migrations import upgrade_to_head

_offsets = itertools.count()


@pytest.fixture
async def metrics_db(db_factory) -> AsyncIterator[Database]:
    test_db = db_factory("metrics")
    db = Database(test_db.url, schema=test_db.schema, name="metrics-test")
    await upgrade_to_head(db, MIGRATIONS)
    yield db
    await db.dispose()


async def feed(
    db: Database, envelopes: Iterable[Envelope[Any]], *, now: datetime | None = None, **kw: Any
) -> list[service.Recorded]:
    """Record events the way the consumer does: one transaction per event (a batch of one)."""
    out = []
    for env in envelopes:
        async with db.transaction() as session:
            out.append(
                await service.record_event(
                    session=session,
                    envelope=env,
                    topic=env.data.topic,
                    partition=0,
                    offset=next(_offsets),
                    now=now or datetime.now(UTC),
                    **kw,
                )
            )
    return out


@pytest.fixture
def feeder() -> Callable[..., Any]:
    return feed
