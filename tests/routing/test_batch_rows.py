"""A consumer batch routed in one transaction: the rows it writes match the events it emits.

Routed posts' assignment rows are inserted after the batch's queue drain with their final values, and the
decisions at commit, both as Core executemany: each row must say what its events say (offered to whom, or
waiting), every post must have exactly one row, a near-duplicate routed in the same batch must join the
assignment of its original, and the audit chain must hold an entry for every assignment event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from services.routing import audit, service
from services.routing.models import (
    NEW_ASSIGNMENT_COLUMNS,
    Assignment,
    Base,
    Decision,
    Department,
    Responder,
    ResponderDepartment,
)
from shared.db import Database
from tests.routing.conftest import ALL_DAYS, screened
from tests.support import database_with_tables

NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # a Thursday, within every day's hours
CONFIG = service.RoutingConfig(default_department="transport", crisis_department="transport")


@pytest.fixture
async def db(db_factory: Callable[[str], Any]) -> AsyncIterator[Database]:
    target = db_factory("routingbatch")
    database = await database_with_tables(target, Base.metadata)
    async with database.transaction() as s:
        s.add(
            Department(
                id="transport",
                name="Transport",
                timezone="UTC",
                hours=ALL_DAYS,
                state=None,
                closures=[],
                sla_policy="standard",
                updated_at=NOW,
            )
        )
        for rid in ("r1", "r2"):
            s.add(
                Responder(
                    id=rid,
                    name=rid,
                    skills=[],
                    languages=[],
                    capacity=1,
                    status="available",
                    idle_since=None,
                    updated_at=NOW,
                )
            )
            s.add(ResponderDepartment(responder_id=rid, department="transport"))
    yield database
    await database.dispose()


def test_new_assignment_has_every_column_of_the_table_in_order() -> None:
    assert list(NEW_ASSIGNMENT_COLUMNS) == list(Assignment.__table__.columns.keys())


class TestBatchRows:
    async def test_rows_match_events_offers_and_waiting_and_a_duplicate_joins_its_original(
        self, db: Database
    ) -> None:
        posts = [screened(priority=3, screened_at=NOW) for _ in range(4)]
        duplicate = screened(priority=3, screened_at=NOW, duplicate_of=posts[0].post_id)
        batch = [*posts, duplicate]
        async with db.transaction() as s:
            per_post = await service.assign_posts(session=s, posts=batch, config=CONFIG, now=NOW)
            for events in per_post:
                audit.record_events(s, events, actor=audit.CONSUMER_ACTOR)

        async with db.transaction() as s:
            rows = {a.post_id: a for a in (await s.execute(select(Assignment))).scalars()}
            kinds = Counter((await s.execute(select(Decision.kind))).scalars())
            chain = await audit.trail.verify(s)

        assert set(rows) == {p.post_id for p in batch}
        routed = [rows[p.post_id] for p in posts]
        assert Counter(a.status for a in routed) == {"offered": 2, "waiting": 2}
        assert {a.responder_id for a in routed if a.status == "offered"} == {"r1", "r2"}
        for a in routed:
            assert (a.offer_expires_at is not None) == (a.status == "offered")
            assert a.fr_due_at is not None
            assert a.rs_due_at is not None
        grouped = rows[duplicate.post_id]
        assert grouped.status == "grouped"
        assert grouped.grouped_with == rows[posts[0].post_id].id

        for post, events in zip(batch, per_post, strict=True):
            mine = [e for e in events if e.data.post_id == post.post_id]
            assert mine[0].type.endswith("assignment.created.v1")
            row = rows[post.post_id]
            assert mine[0].data.assignment_id == row.id
            if post is duplicate:
                continue
            assert mine[0].data.status == row.status
            offers = [e for e in mine if e.type.endswith("assignment.offered.v1")]
            assert [e.data.responder_id for e in offers] == (
                [row.responder_id] if row.status == "offered" else []
            )

        assert kinds == {"routed": 4, "offered": 2, "queued": 2, "grouped": 1}
        emitted = sum(len(events) for events in per_post)
        assert chain.ok
        assert chain.entries == emitted == 5 + 2  # five created, two offered

    async def test_replaying_the_batch_writes_nothing_more(self, db: Database) -> None:
        posts = [screened(screened_at=NOW) for _ in range(3)]
        async with db.transaction() as s:
            await service.assign_posts(session=s, posts=posts, config=CONFIG, now=NOW)
        async with db.transaction() as s:
            again = await service.assign_posts(session=s, posts=posts, config=CONFIG, now=NOW)
        assert again == [[], [], []]
        async with db.transaction() as s:
            assert len((await s.execute(select(Assignment.id))).all()) == 3
            assert len((await s.execute(select(Decision.id))).all()) == 3 + 2 + 1  # routed, offered, queued
