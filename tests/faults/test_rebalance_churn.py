"""F5: rebalance churn. Two routing processes share routing's database and its consumer group while a third
joins and leaves again and again during a stream (leaving by SIGTERM, and by SIGKILL so the group only
notices at the session timeout). Every join and leave moves partitions between members mid-batch, so offset
commits fail (CommitFailedError, rebalance in progress) and partitions are re-read by their new owner.

Asserts: the two steady members never exit (no crash loop on a failed commit) and are ready at the end; every
post is assigned exactly once (the new owner's inbox absorbs what the old one handled).

Replicas of a service need PostgreSQL (docs/scaling.md: with SQLite run exactly one replica), so the platform
runs on a private PostgreSQL cluster whatever TEST_DATABASE_URL says. (On one SQLite file an earlier version
of this test lost assignment events: concurrent relays deleted published rows by id, and SQLite reuses the
ids of an emptied table, so a slow relay deleted another process's new rows. The relay now deletes by id and
event id; SQLite replicas would still publish out of order.)"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.devrun import Platform, ServiceProcess
from tests.faults.harness import (
    PostStream,
    drain_and_check,
    extra_process,
    metric_total,
    platform_on_cluster,
    scrape,
)
from tests.faults.pgcluster import PrivateCluster

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

CYCLES = 3


@pytest.fixture
def platform(var_dir: Path, cluster: PrivateCluster) -> Iterator[Platform]:
    with platform_on_cluster(var_dir, cluster.url, "f5") as p:
        yield p


def count_log_events(path: Any, event: str) -> int:
    n = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if event in line:
                    try:
                        n += json.loads(line).get("event") == event
                    except ValueError:
                        continue
    except FileNotFoundError:
        return 0
    return n


async def test_rebalance_churn_neither_crash_loops_nor_loses_or_doubles(
    platform: Platform, record_fault: Callable[..., Any]
) -> None:
    second = extra_process(platform, "routing", tag="b")
    second.start(echo=platform.echo)
    try:
        await churn(platform, second, record_fault)
    finally:
        second.stop()


async def churn(platform: Platform, second: Any, record_fault: Callable[..., Any]) -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, second.wait_ready, 180)
    steady = [platform.services["routing"], second]

    stream = PostStream(platform.services["ingest"].url, interval=0.1).start()
    joins: list[float] = []
    thirds: list[ServiceProcess] = []
    try:
        await stream.wait_accepted(20)
        for cycle in range(CYCLES):
            third = extra_process(platform, "routing", tag=f"c{cycle}")
            t0 = time.monotonic()
            third.start(echo=platform.echo)
            thirds.append(third)
            await loop.run_in_executor(None, third.wait_ready, 180)
            joins.append(time.monotonic() - t0)
            await stream.wait_accepted(len(stream.accepted) + 15)
            if cycle % 2 == 0:
                await loop.run_in_executor(None, third.stop)  # SIGTERM: leaves the group at once
            else:
                await loop.run_in_executor(None, third.kill)  # SIGKILL: the group notices at session timeout
            await stream.wait_accepted(len(stream.accepted) + 10)
    finally:
        await stream.stop()
        for third in thirds:  # any member left running by a failure above
            if third.process is not None and third.process.poll() is None:
                third.kill()
    churn_over = time.monotonic()

    verdict = await drain_and_check(platform.services["metrics"].url, stream.post_ids)
    recovery = time.monotonic() - churn_over - 1.0
    exited = [s.port for s in steady if s.process is None or s.process.poll() is not None]
    ready = []
    async with httpx.AsyncClient(timeout=5.0) as client:
        for s in steady:
            ready.append((await client.get(f"{s.url}/readyz")).status_code)
    logs = [platform.var_dir / "routing.log", platform.var_dir / "routing-b.log"] + [
        platform.var_dir / f"routing-c{i}.log" for i in range(CYCLES)
    ]
    commit_failures = sum(count_log_events(p, "offset_commit_failed") for p in logs)
    revocations = sum(count_log_events(p, "partitions_revoked") for p in logs)
    redelivered = 0.0
    for s in steady:
        redelivered += metric_total(
            await scrape(s.url),
            "switchboard_events_consumed_total",
            group="routing.assignment",
            outcome="duplicate",
        )

    record_fault(
        f"F5 rebalance churn: 2 routing members, a 3rd joins/leaves x{CYCLES}",
        posts=verdict.posts,
        lost=len(verdict.lost),
        duplicates=len(verdict.duplicated),
        recovery_s=recovery,
        note=f"{revocations} revocations, {commit_failures} failed offset commits handled, "
        f"{redelivered:.0f} redeliveries absorbed; steady members exited: {len(exited)}",
    )
    print(
        f"\nchurn: joins took {[round(j, 1) for j in joins]}s; revocations {revocations}; "
        f"failed commits {commit_failures}; redelivered to steady members {redelivered:.0f}; "
        f"drained {recovery:.1f}s after the churn"
    )
    assert exited == [], "a steady routing member exited during the churn"
    assert ready == [200, 200]
    assert revocations >= CYCLES, "the churn did not move partitions"
    verdict.assert_exactly_once()
