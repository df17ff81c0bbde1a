"""What every platform-level fault test shares: a platform of four processes, a stream of uniquely identified
posts that records each answer, and the checker that counts lost and duplicated effects.

Checker: a post that got a 2xx must reach metrics' timeline as exactly one ``received``, one ``screened`` and
one ``assigned`` event. Fewer after the drain is *lost*; more is a *duplicate effect* (an event emitted twice
with different ids, i.e. a handler's effect taken twice; redeliveries of the same event are absorbed by
metrics' inbox and do not count).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.broker import free_port
from shared.devrun import SERVICES, Platform, ServiceProcess
from tests.conftest import TEST_SECRET, DatabaseTarget, make_token

PIPELINE = (
    "switchboard.post.received.v1",
    "switchboard.post.screened.v1",
    "switchboard.assignment.created.v1",
)
AGENCY = {"Authorization": f"Bearer {make_token('agency_system')}"}
OPS = {"Authorization": f"Bearer {make_token('ops')}"}

#: The environment every fault platform runs with (short group timeouts for the embedded broker).
PLATFORM_ENV = {
    "AUTH_DEV_SECRET": TEST_SECRET,
    "KAFKA_SESSION_TIMEOUT_MS": "2000",
    # The checker reads every post's timeline with one ops token: the per-person budget (429) is
    # not what these tests are about (tests/security/test_limits.py is).
    "RATE_LIMIT_REQUESTS_PER_SECOND": "100000",
    "RATE_LIMIT_BURST": "100000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "400",
    "KAFKA_TOPIC_PARTITIONS": "3",
    "KAFKA_HANDLER_RETRY_BACKOFF_MS": "50",
    # Metrics recomputes a day's rollup one pass after its last change: with 0.2 s passes that is done
    # well within the 1 s a quiescent snapshot waits between its two reads (at the default 2 s, a snapshot
    # could settle before the recompute and the replay test saw the rollup appear in between).
    "METRICS_ROLLUP_INTERVAL_S": "0.2",
    "LOG_LEVEL": "INFO",
}


def make_platform(
    tmp_path: Path,
    dbs: Mapping[str, DatabaseTarget],
    *,
    extra_env: Mapping[str, str] | None = None,
) -> Platform:
    return Platform(
        var_dir=tmp_path,
        database_urls={n: d.url for n, d in dbs.items()},
        database_schemas={n: d.schema for n, d in dbs.items() if d.schema},
        ports={name: free_port() for name in SERVICES},
        extra_env={**PLATFORM_ENV, **(extra_env or {})},
        echo=bool(os.environ.get("E2E_ECHO")),
    )


@contextlib.contextmanager
def platform_on_cluster(var_dir: Path, cluster_url: str, schema_prefix: str) -> Iterator[Platform]:
    """The four services as processes, each in its own schema of a private PostgreSQL cluster (F5, F7)."""
    dbs = {name: DatabaseTarget(cluster_url, f"{schema_prefix}_{name}") for name in SERVICES}
    p = make_platform(var_dir, dbs)
    try:
        p.start()
        yield p
    finally:
        p.stop()


@pytest.fixture
def service_dbs(db_factory: Callable[[str], DatabaseTarget], var_dir: Path) -> dict[str, DatabaseTarget]:
    """PostgreSQL schemas with TEST_DATABASE_URL, else SQLite files beside the logs (kept on failure)."""
    if os.environ.get("TEST_DATABASE_URL"):
        return {name: db_factory(name) for name in SERVICES}
    return {name: DatabaseTarget(f"sqlite+aiosqlite:///{var_dir / name}.db", None) for name in SERVICES}


@pytest.fixture
def var_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The platform's logs and SQLite files: kept (and named) when the test fails, removed when it passes.
    Not pytest's tmp_path, which other sessions on a shared machine rotate away within minutes."""
    path = Path(tempfile.mkdtemp(prefix=f"faults-{request.node.name[:40]}-"))
    yield path
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"\nfault test failed: logs and databases kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def platform(var_dir: Path, service_dbs: dict[str, DatabaseTarget]) -> Iterator[Platform]:
    p = make_platform(var_dir, service_dbs)
    try:
        p.start()
        yield p
    finally:
        p.stop()


def post_body(external_id: str, text: str | None = None) -> dict[str, Any]:
    return {
        "platform": "facebook",
        "external_id": external_id,
        "account": "TransportNSW",
        "text": text or f"Question {external_id}: is the ferry running?",
        "author": {"id": f"author-{external_id}", "handle": "someone"},
        "created_at": "2026-11-26T08:00:00Z",
    }


@dataclass
class PostStream:
    """Sends uniquely identified posts to ingest, one after another, retrying each until a 2xx (as an agency
    system would). Every answer is recorded: acknowledged posts, refusals by status, indeterminate ones."""

    ingest_url: str
    interval: float = 0.02
    text: Callable[[str], str | None] = lambda _external_id: None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    accepted: dict[str, str] = field(default_factory=dict)  # external id -> post id
    refused: Counter[int] = field(default_factory=Counter)
    retry_after_missing: int = 0
    indeterminate: int = 0
    acked_at: dict[str, float] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @property
    def post_ids(self) -> list[str]:
        return list(self.accepted.values())

    def start(self, *, limit: int | None = None) -> PostStream:
        self._task = asyncio.create_task(self._run(limit))
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def finish(self, within: float = 300.0) -> None:
        """Wait until a stream started with ``limit`` has every post acknowledged."""
        assert self._task is not None
        await asyncio.wait_for(self._task, within)

    async def wait_accepted(self, n: int, within: float = 120.0) -> None:
        await wait_until(lambda: _const(len(self.accepted) >= n), within, f"{n} posts accepted")

    async def send(self, client: httpx.AsyncClient, external_id: str) -> None:
        while True:
            try:
                r = await client.post(
                    f"{self.ingest_url}/v1/posts",
                    json=post_body(external_id, self.text(external_id)),
                    headers=AGENCY,
                )
            except httpx.HTTPError:
                self.indeterminate += 1  # the answer is unknown: resending with the same id is safe
            else:
                if 200 <= r.status_code < 300:
                    self.accepted[external_id] = r.json()["id"]
                    self.acked_at[external_id] = time.monotonic()
                    return
                self.refused[r.status_code] += 1
                if r.status_code in (429, 503) and "retry-after" not in r.headers:
                    self.retry_after_missing += 1
            await asyncio.sleep(0.1)  # a post once sent is retried until acknowledged: none is abandoned

    async def _run(self, limit: int | None) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            i = 0
            while not self._stop.is_set() and (limit is None or i < limit):
                i += 1
                await self.send(client, f"{self.run_id}-{i}")
                await asyncio.sleep(self.interval)


async def _const(value: bool) -> bool:
    return value


async def wait_until(predicate: Callable[[], Any], within: float, what: str, every: float = 0.2) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(every)
    raise AssertionError(f"not within {within}s: {what}")


async def timeline_types(client: httpx.AsyncClient, metrics_url: str, post_id: str) -> list[str]:
    r = await client.get(f"{metrics_url}/v1/posts/{post_id}/timeline", headers=OPS)
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return [e["type"] for e in r.json()["events"]]


@dataclass
class Verdict:
    posts: int
    lost: list[str]
    duplicated: list[str]
    drained_after: float  # seconds from the start of the drain until every post was complete (or gave up)
    seen: dict[str, list[str]]

    def missing(self) -> Counter[str]:
        """How many lost posts lack each step of the pipeline."""
        return Counter(t for p in self.lost for t in PIPELINE if t not in self.seen[p])

    def assert_exactly_once(self) -> None:
        assert self.lost == [], (
            f"{len(self.lost)} acknowledged posts lost, e.g. {self.lost[:3]}; missing {dict(self.missing())}"
        )
        assert self.duplicated == [], f"{len(self.duplicated)} posts with duplicate effects"
        for post_id, types in self.seen.items():
            assert sorted(types) == sorted(PIPELINE), (post_id, types)


async def drain_and_check(metrics_url: str, post_ids: list[str], within: float = 300.0) -> Verdict:
    """Wait (at most ``within`` s, an upper bound for a loaded machine) until every post's timeline holds the
    whole pipeline, then look once more at every post, after a pause, for anything beyond it.

    Posts complete roughly in the order they were acknowledged, so while waiting only the oldest pending ones
    are read (at most 40 a round): reading every post every round would take metrics' CPU from the very
    consumer being waited for."""
    pending = list(post_ids)
    seen: dict[str, list[str]] = {}
    started = time.monotonic()
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(timeout=10.0) as client:

        async def look(post_id: str) -> None:
            async with limit:
                seen[post_id] = await timeline_types(client, metrics_url, post_id)

        while pending and time.monotonic() - started < within:
            window = pending[:40]
            await asyncio.gather(*(look(p) for p in window))
            done = {p for p in window if all(t in seen[p] for t in PIPELINE)}
            pending = [p for p in pending if p not in done]
            if pending and len(done) < len(window):
                await asyncio.sleep(1.0)
        drained_after = time.monotonic() - started
        await asyncio.sleep(1.0)  # a late duplicate would land now
        await asyncio.gather(*(look(p) for p in post_ids))
    lost = [p for p, types in seen.items() if not all(t in types for t in PIPELINE)]
    duplicated = [p for p, types in seen.items() if any(types.count(t) > 1 for t in set(types))]
    return Verdict(len(post_ids), lost, duplicated, drained_after, seen)


def extra_process(platform: Platform, name: str, *, port: int | None = None, tag: str) -> ServiceProcess:
    """Another process of ``name`` on the same database and group (a replica), with its own port and log."""
    base = platform.services[name]
    port = port or free_port()
    env = dict(base.env)
    env[f"{name.upper()}_PORT"] = str(port)
    return ServiceProcess(name, port, env, log_file=platform.var_dir / f"{name}-{tag}.log")


def sigterm_and_time(svc: ServiceProcess, bound: float = 30.0) -> tuple[float, int | None]:
    """SIGTERM ``svc`` and measure how long it takes to exit (SIGKILL after ``bound`` s)."""
    proc = svc.process
    assert proc is not None
    started = time.monotonic()
    svc.signal(signal.SIGTERM)
    try:
        proc.wait(bound)
    except subprocess.TimeoutExpired:
        svc.signal(signal.SIGKILL)
        proc.wait(5)
    elapsed = time.monotonic() - started
    if svc._pump is not None:
        svc._pump.join(2)
    return elapsed, proc.returncode


def metric_total(exposition: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus sample family's values whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=5.0) as client:
        with contextlib.suppress(httpx.HTTPError):
            r = await client.get(f"{url}/metrics")
            if r.status_code == 200:
                return r.text
    return ""


async def snapshot_tables(dbs: Mapping[str, DatabaseTarget]) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """Every row of every table of every service (models' metadata), sorted: {service: {table: rows}}."""
    import importlib

    from sqlalchemy import select

    from shared.db.engine import Database

    out: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for name, target in dbs.items():
        models = importlib.import_module(f"services.{name}.models")
        db = Database(target.url, schema=target.schema, name=f"snapshot-{name}")
        try:
            async with db.read_transaction() as session:
                tables: dict[str, list[tuple[Any, ...]]] = {}
                for table in models.Base.metadata.sorted_tables:
                    rows = (await session.execute(select(table))).all()
                    tables[table.name] = sorted((tuple(r) for r in rows), key=repr)
                out[name] = tables
        finally:
            await db.dispose()
    return out


def diff_snapshots(
    before: dict[str, dict[str, list[tuple[Any, ...]]]], after: dict[str, dict[str, list[tuple[Any, ...]]]]
) -> list[str]:
    """Human-readable differences (table, rows only before, rows only after)."""
    problems = []
    for service, tables in before.items():
        for table, rows in tables.items():
            other = after[service][table]
            if rows != other:
                gone = [r for r in rows if r not in other]
                new = [r for r in other if r not in rows]
                problems.append(
                    f"{service}.{table}: {len(rows)} -> {len(other)} rows; "
                    f"only before: {gone[:2]!r}; only after: {new[:2]!r}"
                )
    return problems
