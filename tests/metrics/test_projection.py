"""Recording events into the database: replay changes nothing; arrival order across topics does not matter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import select

from services.metrics import service
from services.metrics.main import MIGRATIONS
from services.metrics.models import PostDepartment, PostEvent, PostFact, PostLabel, VolumeBucket
from services.metrics.repository import RollupRepository
from services.metrics.stats import Interval
from shared.contracts import events as ev
from shared.db import Database
from shared.db.migrations import upgrade_to_head
from tests.metrics import builders as b
from tests.metrics.conftest import feed
from tests.metrics.test_facts import FRI_1600, weekend_scenario


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


class TestDayRollups:
    async def test_rollup_answers_equal_live_answers_before_and_after_refresh(self, metrics_db):
        rng = random.Random(3)
        events = weekend_scenario("w1") + weekend_scenario("w2")
        for i in range(30):
            r0 = FRI_1600 - timedelta(days=rng.randrange(3), minutes=rng.randrange(600))
            dept = rng.choice(["transport", "health"])
            events += [
                b.received(f"x{i}", r0),
                b.lifecycle(ev.AssignmentCreatedV1, f"x{i}", r0, r0, department=dept),
                b.lifecycle(
                    ev.AssignmentAcceptedV1,
                    f"x{i}",
                    r0,
                    r0 + timedelta(seconds=rng.randrange(1, 5000)),
                    department=dept,
                    responder_id="r",
                ),
            ]
        events.append(b.received("unrouted", FRI_1600))
        await feed(metrics_db, events)
        window = {
            "start": datetime(2026, 11, 24, tzinfo=UTC),
            "end": datetime(2026, 12, 1, tzinfo=UTC),
            "group_by": "department",
            "interval": Interval.DAY,
            "max_rows": 10_000,
        }

        async def both(departments):
            async with metrics_db.transaction() as session:
                fast = await service.timeliness(session=session, departments=departments, **window)
                live = await service.timeliness(
                    session=session, departments=departments, use_rollups=False, **window
                )
                return fast, live

        fast, live = await both(None)
        assert fast == live  # every day dirty: computed live
        async with metrics_db.transaction() as session:
            assert await service.refresh_rollups(session=session) > 0
            assert (
                await RollupRepository(session).dirty_days(
                    start=window["start"], end=window["end"], departments=None
                )
                == set()
            )
        for departments in (None, {"health"}, {"transport", "nowhere"}):
            fast, live = await both(departments)
            assert fast == live
            assert fast
        assert any(r["group"] is None for r in (await both(None))[0])  # the unrouted post's cell

        # a transfer moves a post between departments: both cells go stale, answers stay exact
        await feed(
            metrics_db,
            [
                b.lifecycle(
                    ev.AssignmentTransferredV1,
                    "w1",
                    FRI_1600,
                    FRI_1600 + timedelta(hours=1),
                    department="health",
                )
            ],
        )
        fast, live = await both(None)
        assert fast == live
        async with metrics_db.transaction() as session:
            await service.refresh_rollups(session=session)
        fast, live = await both(None)
        assert fast == live


class TestRollupSettle:
    """The background pass recomputes a stale cell once it is quiet for a pass or has waited max_wait."""

    async def _pass(self, db, settle, at: float) -> int:
        async with db.transaction() as session:
            return await service.refresh_rollups(session=session, settle=settle, monotonic=at)

    async def _mark(self, db, post: str, received_at: datetime) -> None:
        await feed(db, [b.received(post, received_at)])

    async def test_a_cell_marked_once_waits_one_pass_then_is_recomputed(self, metrics_db):
        settle = service.RollupSettle(max_wait=30)
        await self._mark(metrics_db, "once", FRI_1600)
        assert await self._pass(metrics_db, settle, 0.0) == 0  # first seen: wait a pass
        assert await self._pass(metrics_db, settle, 2.0) == 1  # quiet since: recomputed
        assert await self._pass(metrics_db, settle, 4.0) == 0  # nothing stale any more
        assert settle.seen == {}

    async def test_a_cell_marked_at_every_pass_is_recomputed_after_max_wait_only(self, metrics_db):
        settle = service.RollupSettle(max_wait=30)
        done = []
        for i, at in enumerate((0.0, 2.0, 4.0, 29.0, 31.0)):
            await self._mark(metrics_db, f"busy{i}", FRI_1600)  # a new post of that day before each pass
            done.append(await self._pass(metrics_db, settle, at))
        assert done == [0, 0, 0, 0, 1]
        # ... and the recomputed rollup is exact: it equals the live answer for that day
        day = datetime(FRI_1600.year, FRI_1600.month, FRI_1600.day, tzinfo=UTC)
        async with metrics_db.transaction() as session:
            window = {"start": day, "end": day + timedelta(days=1), "group_by": "department"}
            fast = await service.timeliness(
                session=session, departments=None, interval=Interval.DAY, max_rows=1000, **window
            )
            live = await service.timeliness(
                session=session,
                departments=None,
                interval=Interval.DAY,
                max_rows=1000,
                use_rollups=False,
                **window,
            )
        assert fast == live
        assert fast[0]["posts"] == 5

    def test_a_costly_cell_waits_cost_factor_times_its_last_recompute(self):
        settle = service.RollupSettle(max_wait=30, cost_factor=20)
        day = datetime(2026, 11, 27, tzinfo=UTC)
        assert not settle.due("d", day, 1, 0.0)
        assert settle.due("d", day, 1, 2.0)  # quiet for a pass
        settle.recomputed("d", day, 3.0, 2.0)  # took 3 s: not again before 2 + 60
        assert [settle.due("d", day, 2, at) for at in (4.0, 6.0, 40.0, 61.9)] == [False] * 4
        assert settle.due("d", day, 2, 62.0)  # quiet since 4.0 and the spacing has passed
        settle.keep_only(set(), 62.0)
        assert settle.seen == {}
        assert settle.not_before == {}  # its spacing had passed
        # a cheap cell is not held back
        settle.recomputed("d", day, 0.01, 100.0)
        assert not settle.due("d", day, 3, 100.5)
        assert settle.due("d", day, 3, 102.5)

    async def test_the_background_pass_stores_what_one_transaction_would(self, metrics_db):
        """main.py's three-transaction pass (due cells, a read transaction, a write) gives the rollup the
        one-transaction refresh gives, and clears the marks."""
        await self._mark(metrics_db, "bg1", FRI_1600)
        await self._mark(metrics_db, "bg2", FRI_1600 + timedelta(minutes=5))
        async with metrics_db.transaction() as session:
            cells = await service.due_rollup_cells(session=session, now=0.0)
        assert len(cells) == 1
        async with metrics_db.read_transaction() as session:
            summary = await service.rollup_summary(session=session, cell=cells[0])
        async with metrics_db.transaction() as session:
            await service.store_rollup(session=session, cell=cells[0], summary=summary)
        assert summary is not None
        assert summary["posts"] == 2
        async with metrics_db.transaction() as session:
            assert await service.due_rollup_cells(session=session, now=1.0) == []

    async def test_a_mark_made_during_a_recompute_keeps_the_cell_dirty(self, metrics_db):
        await self._mark(metrics_db, "r1", FRI_1600)
        async with metrics_db.transaction() as session:
            (cell,) = await service.due_rollup_cells(session=session, now=0.0)
        async with metrics_db.read_transaction() as session:
            summary = await service.rollup_summary(session=session, cell=cell)
        await self._mark(metrics_db, "r2", FRI_1600)  # lands between the read and the store
        async with metrics_db.transaction() as session:
            await service.store_rollup(session=session, cell=cell, summary=summary)
        async with metrics_db.transaction() as session:
            assert len(await service.due_rollup_cells(session=session, now=1.0)) == 1

    async def test_without_settle_every_stale_cell_is_recomputed_at_once(self, metrics_db):
        await self._mark(metrics_db, "p1", FRI_1600)
        await self._mark(metrics_db, "p2", FRI_1600 - timedelta(days=1))
        async with metrics_db.transaction() as session:
            assert await service.refresh_rollups(session=session) == 2
