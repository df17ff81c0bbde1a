"""PostgreSQL computes the summary with percentile_disc; SQLite in Python. They must agree exactly."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.metrics import service
from services.metrics.facts import PostFacts
from services.metrics.repository import PostFactRepository
from services.metrics.stats import Interval

START = datetime(2026, 11, 2, tzinfo=UTC)


def random_fact(rng: random.Random, i: int) -> PostFacts:
    def maybe(scale: float) -> float | None:
        return None if rng.random() < 0.2 else round(rng.expovariate(1 / scale), 3)

    return PostFacts(
        post_id=f"p{i}",
        platform=rng.choice(["x", "email", None]),
        priority=rng.choice([1, 2, 3, 4]),
        department=rng.choice(["a", "b", "c"]),
        responder_id=rng.choice(["r1", "r2", None]),
        received_at=START + timedelta(seconds=rng.uniform(0, 3 * 86400)),
        first_response_at=START if rng.random() < 0.7 else None,
        assign_seconds=maybe(600),
        first_response_seconds=maybe(3600),
        resolve_seconds=maybe(86400),
        assign_business_seconds=maybe(300),
        first_response_business_seconds=maybe(1800),
        resolve_business_seconds=maybe(40000),
        sla_met=rng.choice([True, False, None]),
        breached_first_response=rng.random() < 0.1,
        breached_resolve=rng.random() < 0.1,
        labels=rng.sample(["l1", "l2", "l3"], rng.randrange(3)),
    )


@pytest.mark.parametrize(
    ("group_by", "interval"), [("department", "day"), ("label", "hour"), ("priority", "week")]
)
async def test_database_and_python_summaries_are_identical(metrics_db, group_by, interval):
    if metrics_db.is_sqlite:
        pytest.skip("the aggregate path is PostgreSQL's; run with TEST_DATABASE_URL")
    rng = random.Random(f"{group_by}-{interval}")
    async with metrics_db.transaction() as session:
        repo = PostFactRepository(session)
        for i in range(400):
            fact = random_fact(rng, i)
            await repo.upsert(fact.columns())
            await repo.replace_labels(fact.post_id, fact.labels)
    end = START + timedelta(days=4)
    async with metrics_db.transaction() as session:
        in_db = await service.timeliness(
            session=session,
            start=START,
            end=end,
            group_by=group_by,
            departments={"a", "b"},
            interval=Interval(interval),
            max_rows=10_000,
            use_rollups=False,  # the database's aggregate, not the day rollup
        )
        rows = await PostFactRepository(session).timeliness_rows(
            start=START, end=end, group_by=group_by, departments={"a", "b"}, limit=10_000
        )
    in_python = [g.as_dict() for g in service.summarise_timeliness(rows=rows, interval=Interval(interval))]
    assert len(in_db) > 3
    assert in_db == in_python
