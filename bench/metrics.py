"""Metrics query benchmark (W5): load 1,000,000 events, time the timeliness queries, print a Markdown table.

    python -m bench.metrics --backend postgres --url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    python -m bench.metrics --backend sqlite

The events are synthetic but shaped like the platform's: each post has received, screened, created, offered,
accepted, first reply, resolved, and some SLA warnings, breaches and transfers (about 7 events a post, so
1M events are ~140k posts over 30 days in 10 departments). Facts are folded from the events by the very
function the consumer uses (``services.metrics.facts.fold``); events and facts are then bulk-loaded into a
freshly migrated database (COPY on PostgreSQL). Each measured query is what ``GET /v1/timeliness`` runs:
the repository's SELECT plus the exact percentile summary, without HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from services.metrics import service
from services.metrics.facts import (
    T_ACCEPTED,
    T_CREATED,
    T_OFFERED,
    T_PUBLISHED,
    T_RECEIVED,
    T_RESOLVED,
    T_SCREENED,
    T_SLA_BREACHED,
    T_SLA_WARNING,
    T_TRANSFERRED,
    EventRecord,
    PostFacts,
    fold,
)
from services.metrics.main import MIGRATIONS
from services.metrics.models import PostEvent, PostFact, PostLabel, TimelinessDay
from services.metrics.repository import RollupRepository, set_statement_timeout
from services.metrics.stats import Interval, bucket_start
from shared.db import Database
from shared.db.migrations import upgrade_to_head

DEPARTMENTS = [f"dept-{i:02d}" for i in range(10)]
PLATFORMS = ["x", "facebook", "instagram", "mastodon", "email"]
LABELS = ["roads", "health", "pii:phone", "complaint", "praise", "outage"]
END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30
TOPIC = {
    T_RECEIVED: "posts.received.v1",
    T_SCREENED: "posts.screened.v1",
    T_SLA_WARNING: "sla.v1",
    T_SLA_BREACHED: "sla.v1",
    T_PUBLISHED: "replies.v1",
}


def post_events(rng: random.Random) -> list[tuple[str, str, datetime, dict[str, Any]]]:
    """(event_id, type, occurred_at, attributes) of one synthetic post."""
    received = END - timedelta(seconds=rng.uniform(0, DAYS * 86400))
    dept = rng.choice(DEPARTMENTS)
    priority = rng.choice((1, 2, 3, 3, 4))
    responder = f"r{rng.randrange(200)}"
    assign_s = rng.lognormvariate(6.4, 1.0)  # median ~10 min
    answer_s = assign_s + rng.lognormvariate(8.5, 1.0)  # + median ~80 min
    resolve_s = answer_s + rng.lognormvariate(9.5, 1.0)
    due = received + timedelta(hours=4)
    base = {
        "department": dept,
        "queue": "general",
        "priority": priority,
        "post_received_at": received,
    }

    def at(seconds: float) -> datetime:
        return received + timedelta(seconds=seconds)

    def life(t: str, seconds: float, **kw: Any) -> tuple[str, str, datetime, dict[str, Any]]:
        when = at(seconds)
        return (
            f"{rng.getrandbits(64):016x}",
            t,
            when,
            base | {"occurred_at": when} | kw,
        )

    out = [
        (
            f"{rng.getrandbits(64):016x}",
            T_RECEIVED,
            received,
            {"platform": rng.choice(PLATFORMS), "received_at": received, "hashtags": []},
        ),
        (
            f"{rng.getrandbits(64):016x}",
            T_SCREENED,
            at(1),
            {
                "priority": priority,
                "labels": rng.sample(LABELS, rng.randrange(3)),
                "screened_at": at(1),
            },
        ),
        life(T_CREATED, 2, status="offered", first_response_due_at=due),
        life(T_OFFERED, 2, responder_id=responder),
        life(T_ACCEPTED, assign_s, responder_id=responder, business_seconds_since_received=assign_s * 0.4),
        life(
            T_PUBLISHED,
            answer_s,
            responder_id=responder,
            first_response=True,
            business_seconds_since_received=answer_s * 0.4,
        ),
    ]
    if answer_s > 3 * 3600:
        out.append(life(T_SLA_WARNING, 3 * 3600, target="first_response", due_at=due))
    if answer_s > 4 * 3600:
        out.append(life(T_SLA_BREACHED, 4 * 3600, target="first_response", due_at=due))
    if rng.random() < 0.05:
        out.append(life(T_TRANSFERRED, assign_s / 2, from_department=dept))
    if rng.random() < 0.9:
        out.append(
            life(
                T_RESOLVED, resolve_s, responder_id=responder, business_seconds_since_received=resolve_s * 0.4
            )
        )
    return out


def generate(total_events: int, seed: int = 1) -> tuple[list[tuple[Any, ...]], list[PostFacts]]:
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not security
    events: list[tuple[Any, ...]] = []
    facts: list[PostFacts] = []
    n = 0
    while len(events) < total_events:
        evs = post_events(rng)[: total_events - len(events)]
        post_id = f"post-{n:08d}"
        facts.append(fold(post_id, (EventRecord(e[0], e[1], e[2], e[3]) for e in evs)))
        for offset, (event_id, type_, occurred, attributes) in enumerate(evs):
            events.append(
                (event_id, post_id, type_, occurred, attributes, TOPIC.get(type_, "assignments.v1"), offset)
            )
        n += 1
    return events, facts


async def load(db: Database, events: list[tuple[Any, ...]], facts: list[PostFacts]) -> None:
    now = datetime.now(UTC)
    fact_rows = [f.columns() for f in facts]
    label_rows = [{"post_id": f.post_id, "label": lb} for f in facts for lb in f.labels]
    if not db.is_sqlite:
        import asyncpg  # the driver SQLAlchemy uses; COPY is the fast path for a million rows

        url = make_url(db.url).set(drivername="postgresql")
        conn = await asyncpg.connect(
            url.render_as_string(hide_password=False), server_settings={"search_path": db.schema or "public"}
        )
        try:
            await conn.copy_records_to_table(
                "post_event",
                records=[
                    (
                        e[0],
                        e[1],
                        e[2],
                        "switchboard/bench",
                        e[3],
                        now,
                        e[5],
                        0,
                        e[6],
                        orjson.dumps(e[4]).decode(),
                    )
                    for e in events
                ],
                columns=[
                    "event_id",
                    "post_id",
                    "type",
                    "source",
                    "occurred_at",
                    "recorded_at",
                    "topic",
                    "partition",
                    "offset",
                    "attributes",
                ],
            )
            columns = list(fact_rows[0])
            await conn.copy_records_to_table(
                "post_fact", records=[tuple(r[c] for c in columns) for r in fact_rows], columns=columns
            )
            await conn.copy_records_to_table(
                "post_label",
                records=[(r["post_id"], r["label"]) for r in label_rows],
                columns=["post_id", "label"],
            )
            await conn.execute("ANALYZE post_event; ANALYZE post_fact; ANALYZE post_label")
        finally:
            await conn.close()
        return
    # SQLite: one writer, one transaction, executemany through SQLAlchemy Core (bound like the service binds).
    async with db.engine.begin() as conn:
        for chunk in range(0, len(events), 50_000):
            await conn.exec_driver_sql(
                "INSERT INTO post_event (event_id, post_id, type, source, occurred_at, recorded_at, topic, "
                'partition, "offset", attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                [
                    (
                        e[0],
                        e[1],
                        e[2],
                        "switchboard/bench",
                        f"{e[3]:%Y-%m-%d %H:%M:%S.%f}",
                        f"{now:%Y-%m-%d %H:%M:%S.%f}",
                        e[5],
                        0,
                        e[6],
                        orjson.dumps(e[4]).decode(),
                    )
                    for e in events[chunk : chunk + 50_000]
                ],
            )
        for chunk in range(0, len(fact_rows), 20_000):
            await conn.execute(insert(PostFact), fact_rows[chunk : chunk + 20_000])
        await conn.execute(insert(PostLabel), label_rows)
        await conn.execute(text("ANALYZE"))


async def timeliness(
    db: Database,
    *,
    start: datetime,
    end: datetime,
    group_by: str,
    departments: set[str] | None,
    interval: Interval,
    use_rollups: bool = True,
) -> int:
    """What GET /v1/timeliness does, minus HTTP; returns the posts summarised."""
    async with db.transaction() as session:
        await set_statement_timeout(session, 5000)
        rows = await service.timeliness(
            session=session,
            start=start,
            end=end,
            group_by=group_by,
            departments=departments,
            interval=interval,
            max_rows=1_000_000,
            use_rollups=use_rollups,
        )
        return sum(int(r["posts"]) for r in rows)


async def build_rollups(db: Database) -> float:
    """Mark every (department, day) cell stale and let the service's refresher compute them all."""
    t0 = time.perf_counter()
    async with db.transaction() as session:
        cells = (
            await session.execute(
                select(PostFact.department, PostFact.received_at).where(PostFact.received_at.is_not(None))
            )
        ).all()
        keys = {(d or service.NO_DEPARTMENT, bucket_start(r, Interval.DAY)) for d, r in cells}
        repo = RollupRepository(session)
        for department, day in sorted(keys):
            await repo.mark_dirty(department=department, day=day)
    while True:
        async with db.transaction() as session:
            if await service.refresh_rollups(session=session, limit=200) == 0:
                break
    return time.perf_counter() - t0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * int(p) // 100) - 1)]


async def measure(db: Database, name: str, runs: int, make_args: Any) -> dict[str, Any]:
    rng = random.Random(name)  # noqa: S311 - reproducible query windows
    await timeliness(db, **make_args(rng))  # warm the cache once
    times, rows = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        rows.append(await timeliness(db, **make_args(rng)))
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "query": name,
        "runs": runs,
        "rows": int(statistics.median(rows)),
        "p50": pct(times, 50),
        "p95": pct(times, 95),
        "p99": pct(times, 99),
        "max": max(times),
    }


def day_start(rng: random.Random, days: int) -> datetime:
    return (END - timedelta(days=rng.randrange(days, DAYS + 1))).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


async def run(backend: str, url: str, events_n: int, runs: int, phase: str) -> list[dict[str, Any]]:
    """``load`` fills a dataset kept for later runs; ``query`` measures it; ``drop`` removes it."""
    schema = f"bench_metrics_{events_n}" if backend == "postgres" else None
    db = Database(url, schema=schema, name="bench-metrics")
    try:
        if phase == "drop":
            if schema:
                async with db.engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            return []
        await upgrade_to_head(db, MIGRATIONS)
        async with db.transaction() as session:
            loaded = await session.scalar(select(func.count()).select_from(PostEvent))
        if phase == "load":
            if loaded == events_n:
                print(f"[{backend}] {events_n:,} events already loaded", flush=True)
                return []
            if loaded:
                raise SystemExit(
                    f"[{backend}] a partial dataset ({loaded:,} events) exists: run --phase drop"
                )
            t0 = time.perf_counter()
            events, facts = generate(events_n)
            t_gen = time.perf_counter() - t0
            t0 = time.perf_counter()
            await load(db, events, facts)
            t_load = time.perf_counter() - t0
            t_rollup = await build_rollups(db)
            print(
                f"[{backend}] {len(events):,} events, {len(facts):,} posts: generated+folded {t_gen:.1f} s, "
                f"loaded {t_load:.1f} s, day rollups {t_rollup:.1f} s",
                flush=True,
            )
            return []
        if loaded != events_n:
            raise SystemExit(f"[{backend}] {loaded:,} events loaded, {events_n:,} expected: run --phase load")
        async with db.transaction() as session:
            if not await session.scalar(select(func.count()).select_from(TimelinessDay)):
                print(f"[{backend}] day rollups built in {await build_rollups(db):.1f} s", flush=True)
        results = [
            await measure(
                db,
                "24 h (one UTC day), one department",
                runs,
                lambda r: {
                    "start": (s := day_start(r, 1)),
                    "end": s + timedelta(days=1),
                    "group_by": "department",
                    "departments": {r.choice(DEPARTMENTS)},
                    "interval": Interval.DAY,
                },
            ),
            await measure(
                db,
                "7 days, all departments, by department x day",
                max(5, runs // 3),
                lambda r: {
                    "start": (s := day_start(r, 7)),
                    "end": s + timedelta(days=7),
                    "group_by": "department",
                    "departments": None,
                    "interval": Interval.DAY,
                },
            ),
            await measure(
                db,
                "24 h rolling (not day-aligned), one department, live",
                runs,
                lambda r: {
                    "start": (s := day_start(r, 1) + timedelta(hours=r.randrange(1, 24))),
                    "end": s + timedelta(days=1),
                    "group_by": "department",
                    "departments": {r.choice(DEPARTMENTS)},
                    "interval": Interval.DAY,
                },
            ),
            await measure(
                db,
                "7 days, all departments, by department x day, live (no rollup)",
                max(5, runs // 3),
                lambda r: {
                    "start": (s := day_start(r, 7)),
                    "end": s + timedelta(days=7),
                    "group_by": "department",
                    "departments": None,
                    "interval": Interval.DAY,
                    "use_rollups": False,
                },
            ),
            await measure(
                db,
                "7 days, all departments, by label x day",
                max(5, runs // 3),
                lambda r: {
                    "start": (s := day_start(r, 7)),
                    "end": s + timedelta(days=7),
                    "group_by": "label",
                    "departments": None,
                    "interval": Interval.DAY,
                },
            ),
            await measure(
                db,
                "30 days (all), by priority x week",
                5,
                lambda _r: {
                    "start": END - timedelta(days=DAYS),
                    "end": END,
                    "group_by": "priority",
                    "departments": None,
                    "interval": Interval.WEEK,
                },
            ),
        ]
        for r in results:
            r["backend"] = backend
        return results
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], action="append")
    parser.add_argument(
        "--url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--phase", choices=["load", "query", "all", "drop"], default="all")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    backends = args.backend or ["postgres", "sqlite"]
    phases = ["load", "query"] if args.phase == "all" else [args.phase]
    results: list[dict[str, Any]] = []
    for backend in backends:
        sqlite_path = f"var/bench-metrics-{args.events}.db"
        url = args.url if backend == "postgres" else f"sqlite+aiosqlite:///{sqlite_path}"
        for phase in phases:
            results += asyncio.run(run(backend, url, args.events, args.runs, phase))
        if backend == "sqlite" and args.phase == "drop":
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(sqlite_path + suffix):
                    os.remove(sqlite_path + suffix)
    if not results:
        return
    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}; {args.events:,} events\n"
    )
    print("| backend | query | runs | posts summarised | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['backend']} | {r['query']} | {r['runs']} | {r['rows']:,} | {r['p50']:.1f} "
            f"| {r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.1f} |"
        )


if __name__ == "__main__":
    main()
