"""F3 (design F8): full replay. After a stream, every service restarts with every consumer group reset to the
earliest offset (``KAFKA_REPLAY_FROM_BEGINNING=true``) and re-reads every topic: every table of every service
and every metric stays exactly as it was, because each consumer's inbox absorbs what it already handled."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.devrun import Platform
from tests.conftest import DatabaseTarget
from tests.faults.harness import (
    OPS,
    PostStream,
    diff_snapshots,
    drain_and_check,
    metric_total,
    scrape,
    snapshot_tables,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

POSTS = 60
#: Groups and how many events each must at least see again: one per post and topic it consumes.
REPLAYED = {
    "policy": ("policy.screening", POSTS),
    "routing": ("routing.assignment", POSTS),
    "metrics": ("metrics.timeline", 3 * POSTS),
}
WINDOW = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}


async def metrics_reports(metrics_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        out = {}
        for path, params in (
            ("/v1/timeliness", {**WINDOW, "interval": "week"}),
            ("/v1/volume", {**WINDOW, "interval": "day"}),
            ("/v1/volume", {**WINDOW, "interval": "day", "kind": "hashtag"}),
        ):
            r = await client.get(f"{metrics_url}{path}", params=params, headers=OPS)
            assert r.status_code == 200, r.text
            out[f"{path}?{sorted(params.items())}"] = r.json()
        return out


async def quiescent_snapshot(dbs: dict[str, DatabaseTarget]) -> dict[str, Any]:
    """A snapshot that two reads a second apart agree on (background work has settled)."""
    previous = await snapshot_tables(dbs)
    for _ in range(30):
        await asyncio.sleep(1.0)
        current = await snapshot_tables(dbs)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the tables never settled: " + "; ".join(diff_snapshots(previous, current)))


async def test_full_replay_changes_no_table_and_no_metric(
    platform: Platform,
    service_dbs: dict[str, DatabaseTarget],
    record_fault: Callable[..., Any],
) -> None:
    stream = PostStream(platform.services["ingest"].url, interval=0.0).start(limit=POSTS)
    await stream.finish()
    metrics_url = platform.services["metrics"].url
    first = await drain_and_check(metrics_url, stream.post_ids)
    first.assert_exactly_once()

    before = await quiescent_snapshot(service_dbs)
    reports_before = await metrics_reports(metrics_url)

    loop = asyncio.get_running_loop()
    for svc in platform.services.values():
        svc.signal(signal.SIGTERM)
    for svc in platform.services.values():
        await loop.run_in_executor(None, svc.stop)
    started = time.monotonic()
    for name in REPLAYED:
        platform.services[name].env["KAFKA_REPLAY_FROM_BEGINNING"] = "true"
    for svc in platform.services.values():
        svc.start(echo=platform.echo)
    for svc in platform.services.values():
        await loop.run_in_executor(None, svc.wait_ready, 180)

    async def replayed() -> bool:
        for name, (group, expected) in REPLAYED.items():
            text = await scrape(platform.services[name].url)
            seen = metric_total(text, "switchboard_events_consumed_total", group=group, outcome="duplicate")
            if seen < expected:
                return False
        return True

    await wait_until(replayed, 180, "every group re-read every topic from the beginning", every=0.5)
    recovery = time.monotonic() - started

    handled_again = {}
    for name, (group, _) in REPLAYED.items():
        text = await scrape(platform.services[name].url)
        handled_again[name] = metric_total(
            text, "switchboard_events_consumed_total", group=group, outcome="handled"
        )
    after = await quiescent_snapshot(service_dbs)
    reports_after = await metrics_reports(metrics_url)
    second = await drain_and_check(metrics_url, stream.post_ids)

    problems = diff_snapshots(before, after)
    rows = sum(len(r) for tables in before.values() for r in tables.values())
    record_fault(
        "F3 full replay from the earliest offset",
        posts=len(stream.post_ids),
        lost=len(second.lost),
        duplicates=len(second.duplicated),
        recovery_s=recovery,
        note=f"{rows} rows in {sum(len(t) for t in before.values())} tables compared: "
        f"{len(problems)} differ; re-handled events {sum(handled_again.values()):.0f}",
    )
    print(f"\nreplay: {rows} rows compared; re-read everything in {recovery:.1f}s")
    assert problems == [], problems
    assert reports_after == reports_before
    assert handled_again == dict.fromkeys(REPLAYED, 0.0), handled_again
    second.assert_exactly_once()
