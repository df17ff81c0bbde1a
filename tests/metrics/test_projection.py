"""Recording events into the database: replay changes nothing; arrival order across topics does not matter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import select

from services.metrics import service
from services.metrics.main import MIGRATIONS
from services.metrics.models import PostDepartment, PostEvent, PostFact, PostLabel, VolumeBucket
from shared.contracts import events as ev
from shared.db import Database
from shared.db.migrations import upgrade_to_head
from tests.metrics import builders as b
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


class TestPrometheusMetrics:
    async def test_first_response_breach_and_backlog_are_exposed(self, metrics_db):
        dept = "prom-test"
        r0 = datetime.now(UTC) - timedelta(hours=1)

        def sample(name, **labels):
            return REGISTRY.get_sample_value(name, labels) or 0.0

        before = sample("switchboard_time_to_first_response_seconds_count", department=dept)
        breaches = sample("switchboard_sla_breaches_total", department=dept, target="first_response")
        events = [
            b.lifecycle(
                ev.AssignmentCreatedV1,
                "pm1",
                r0,
                r0,
                department=dept,
                queue="q",
                status="assigned",
                responder_id="r",
            ),
            b.lifecycle(ev.AssignmentCreatedV1, "pm2", r0, r0, department=dept, queue="q"),
            b.lifecycle(
                ev.ReplyPublishedV1, "pm1", r0, r0 + timedelta(minutes=5), department=dept, queue="q"
            ),
            b.lifecycle(
                ev.ReplyPublishedV1,
                "pm1",
                r0,
                r0 + timedelta(minutes=9),
                department=dept,
                queue="q",
                first_response=False,
            ),
            b.lifecycle(
                ev.SlaBreachedV1,
                "pm2",
                r0,
                r0,
                department=dept,
                queue="q",
                target="first_response",
                due_at=r0,
                sla_policy="std",
            ),
            b.lifecycle(ev.AssignmentCreatedV1, "pm3", r0, r0, department=dept, queue="q"),
        ]
        await feed(metrics_db, events)
        await feed(metrics_db, events)  # replay: observed once
        assert sample("switchboard_time_to_first_response_seconds_count", department=dept) == before + 1
        assert (
            sample("switchboard_sla_breaches_total", department=dept, target="first_response") == breaches + 1
        )
        async with metrics_db.transaction() as session:
            await service.refresh_backlog_gauges(session=session, now=datetime.now(UTC))
        assert sample("switchboard_backlog_waiting", department=dept, queue="q") == 2
        assert sample("switchboard_backlog_at_risk", department=dept, queue="q") == 1
        assert sample("switchboard_backlog_oldest_waiting_seconds", department=dept, queue="q") >= 3599
