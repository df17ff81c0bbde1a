"""Recording events into the database: replay changes nothing; arrival order across topics does not matter."""

from __future__ import annotations

import random

from sqlalchemy import select

from services.metrics.main import MIGRATIONS
from services.metrics.models import PostDepartment, PostEvent, PostFact, PostLabel, VolumeBucket
from shared.db import Database
from shared.db.migrations import upgrade_to_head
from tests.metrics.conftest import feed
from tests.metrics.test_facts import weekend_scenario


async def snapshot(db) -> dict:
    async with db.transaction() as session:
        out = {}
        for model in (PostFact, PostLabel, PostDepartment, VolumeBucket):
            rows = (await session.scalars(select(model))).all()
            out[model.__tablename__] = sorted(
                (tuple(sorted((k, v) for k, v in r.__dict__.items() if not k.startswith("_"))) for r in rows),
                key=repr,
            )
        out["events"] = len((await session.scalars(select(PostEvent))).all())
        return out


class TestReplayChangesNothing:
    async def test_every_event_again_leaves_every_table_unchanged(self, metrics_db):
        events = weekend_scenario("p1") + weekend_scenario("p2")
        recorded = await feed(metrics_db, events)
        assert all(r.stored for r in recorded)
        before = await snapshot(metrics_db)
        again = await feed(metrics_db, events)
        assert not any(r.stored for r in again)
        assert await snapshot(metrics_db) == before
        assert before["events"] == 14


class TestOutOfOrderArrival:
    async def test_shuffled_arrival_builds_the_same_facts(self, metrics_db, db_factory):
        events = weekend_scenario("p1")
        await feed(metrics_db, events)
        expected = await snapshot(metrics_db)

        other = db_factory("metrics_shuffled")
        db2 = Database(other.url, schema=other.schema, name="metrics-test-2")
        await upgrade_to_head(db2, MIGRATIONS)
        try:
            for seed in range(3):
                shuffled = list(events)
                random.Random(seed).shuffle(shuffled)
                await feed(db2, [*reversed(events), *shuffled])  # resolved first, received last; then replays
            assert await snapshot(db2) == expected
        finally:
            await db2.dispose()
