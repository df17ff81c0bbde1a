"""F7: the database goes away mid-stream. The four services share a private PostgreSQL cluster (one schema
each) that the test stops with ``pg_ctl stop -m fast`` while posts stream in and starts again 10 s later.

While it is down: ingest answers 503 with Retry-After (nothing was stored, so no 2xx), readiness says not
ready, consumers keep their batch in hand and commit no offset (nothing is dead-lettered: an outage is not
the message's fault). When it is back, everything resumes: every post that got a 2xx is screened, assigned
and in metrics exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.devrun import SERVICES, Platform
from tests.faults.harness import OPS, PostStream, drain_and_check, metric_total, platform_on_cluster, scrape
from tests.faults.pgcluster import PrivateCluster

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

OUTAGE_S = 10.0


@pytest.fixture
def pg_platform(var_dir: Path, cluster: PrivateCluster) -> Iterator[Platform]:
    with platform_on_cluster(var_dir, cluster.url, "f7") as p:
        yield p


async def not_ready(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(f"{url}/readyz")).status_code == 503
    except httpx.HTTPError:
        return False


async def test_database_outage_pauses_and_resumes_losing_nothing(
    pg_platform: Platform, cluster: PrivateCluster, record_fault: Callable[..., Any]
) -> None:
    platform = pg_platform
    loop = asyncio.get_running_loop()
    ingest_url = platform.services["ingest"].url
    stream = PostStream(ingest_url, interval=0.02).start()
    not_ready_seen: set[str] = set()
    try:
        await stream.wait_accepted(40)
        refused_before = sum(stream.refused.values())
        await loop.run_in_executor(None, cluster.stop)
        stopped_at = time.monotonic()
        async with httpx.AsyncClient(timeout=5.0) as client:
            while time.monotonic() - stopped_at < OUTAGE_S:
                for name, svc in platform.services.items():
                    if name not in not_ready_seen and await not_ready(client, svc.url):
                        not_ready_seen.add(name)
                await asyncio.sleep(0.5)
        # An answer that left just before the stop may arrive a moment after it: allow one second.
        acked_during = [e for e, t in stream.acked_at.items() if t > stopped_at + 1.0]
        refused_during = sum(stream.refused.values()) - refused_before
        await loop.run_in_executor(None, cluster.start)
        restarted_at = time.monotonic()
        accepted_at_restart = len(stream.accepted)
        await stream.wait_accepted(accepted_at_restart + 1, within=120)
        first_2xx_after = time.monotonic() - restarted_at
        await stream.wait_accepted(accepted_at_restart + 40, within=120)
    finally:
        await stream.stop()

    verdict = await drain_and_check(platform.services["metrics"].url, stream.post_ids)
    recovery = time.monotonic() - restarted_at - 1.0  # drain_and_check's closing pause
    dead = 0.0
    for name in ("policy", "routing", "metrics"):
        dead += metric_total(await scrape(platform.services[name].url), "switchboard_dead_letters_total")
    async with httpx.AsyncClient(timeout=10.0) as client:
        r = await client.get(f"{platform.services['metrics'].url}/v1/ops/dead-letters", headers=OPS)
        r.raise_for_status()
        dead_stored = len(r.json()["items"])

    record_fault(
        "F7 PostgreSQL stopped 10 s mid-stream (pg_ctl stop -m fast)",
        posts=verdict.posts,
        lost=len(verdict.lost),
        duplicates=len(verdict.duplicated),
        recovery_s=recovery,
        note=f"{refused_during} answers 503 during the outage, {len(acked_during)} 2xx; "
        f"first 2xx {first_2xx_after:.1f}s after restart; dead letters {dead + dead_stored:.0f}",
    )
    print(
        f"\nDB outage: refused {dict(stream.refused)} (Retry-After missing {stream.retry_after_missing}), "
        f"2xx during outage {len(acked_during)}, not ready seen {sorted(not_ready_seen)}, "
        f"first 2xx {first_2xx_after:.1f}s after restart, all complete {recovery:.1f}s after restart"
    )
    assert acked_during == [], "a 2xx while the database was down"
    assert refused_during > 0
    assert set(stream.refused) == {503}, stream.refused
    assert stream.retry_after_missing == 0
    assert not_ready_seen == set(SERVICES), not_ready_seen
    # An outage is not the message's fault: nothing is dead-lettered.
    assert dead == 0
    assert dead_stored == 0
    verdict.assert_exactly_once()
