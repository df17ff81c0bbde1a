"""F8 (design F10): SIGTERM under load. Every service is sent SIGTERM while posts stream in: each
finishes the batch in hand, commits its offsets, flushes its outbox and exits within the 10 s shutdown
contract; restarted, they carry on. No post is lost or handled twice, and nothing is even delivered twice
(a clean shutdown commits what it handled, so its successor re-reads nothing)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.devrun import Platform
from tests.faults.harness import PostStream, drain_and_check, metric_total, scrape, sigterm_and_time

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

#: The shutdown contract (docs/reliability.md): a service exits at most this long after SIGTERM.
SHUTDOWN_BOUND_S = 10.0
GROUPS = {"policy": "policy.screening", "routing": "routing.assignment", "metrics": "metrics.timeline"}


async def test_sigterm_under_load_drains_commits_and_exits_within_10s(
    platform: Platform, record_fault: Callable[..., Any]
) -> None:
    """All four services get SIGTERM at the same moment while posts stream in and a backlog is being
    consumed (one restart instead of four keeps this short enough for `make test`)."""
    loop = asyncio.get_running_loop()
    stream = PostStream(platform.services["ingest"].url, interval=0.02).start()
    try:
        await stream.wait_accepted(60)
        names = list(platform.services)
        timed = await asyncio.gather(
            *(loop.run_in_executor(None, sigterm_and_time, platform.services[n]) for n in names)
        )
        exits = dict(zip(names, timed, strict=True))
        t0 = time.monotonic()
        for name in names:
            platform.services[name].start(echo=platform.echo)
        for name in names:
            await loop.run_in_executor(None, platform.services[name].wait_ready, 180)
        restart = time.monotonic() - t0
        await stream.wait_accepted(len(stream.accepted) + 20)
    finally:
        await stream.stop()

    verdict = await drain_and_check(platform.services["metrics"].url, stream.post_ids)
    redelivered = {}
    for name, group in GROUPS.items():
        text = await scrape(platform.services[name].url)
        redelivered[name] = metric_total(
            text, "switchboard_events_consumed_total", group=group, outcome="duplicate"
        )
    record_fault(
        "F8 SIGTERM all four services under load",
        posts=verdict.posts,
        lost=len(verdict.lost),
        duplicates=len(verdict.duplicated),
        recovery_s=restart,
        note="exit after SIGTERM: "
        + ", ".join(f"{n} {t:.1f}s" for n, (t, _) in exits.items())
        + f"; redelivered after restart: {sum(redelivered.values()):.0f}",
    )
    print(f"\nSIGTERM exits: {exits}; restart {restart:.1f}s; redelivered: {redelivered}")
    for name, (elapsed, code) in exits.items():
        # uvicorn re-raises SIGTERM once its graceful shutdown is done: -SIGTERM or 0 is a clean exit.
        assert code in (0, -signal.SIGTERM), f"{name} ended with {code}"
        assert elapsed < SHUTDOWN_BOUND_S, f"{name} took {elapsed:.1f}s to exit after SIGTERM"
    verdict.assert_exactly_once()
    assert redelivered == dict.fromkeys(GROUPS, 0.0), redelivered
