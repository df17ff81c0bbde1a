"""The four services as separate processes over the real broker: a post's whole path, and crashes.

Posts are uniquely identified; after the faults, every post that got a 202 must be received, screened and
assigned exactly once, as metrics' timeline shows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.broker import free_port
from shared.devrun import SERVICES, Platform
from tests.conftest import TEST_SECRET, DatabaseTarget, make_token

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

PIPELINE = [
    "switchboard.post.received.v1",
    "switchboard.post.screened.v1",
    "switchboard.assignment.created.v1",
]
AGENCY = {"Authorization": f"Bearer {make_token('agency_system')}"}
OPS = {"Authorization": f"Bearer {make_token('ops')}"}


@pytest.fixture
def platform(tmp_path: Path, db_factory: Callable[[str], DatabaseTarget]) -> Iterator[Platform]:
    dbs = {name: db_factory(name) for name in SERVICES}
    p = Platform(
        var_dir=tmp_path,
        database_urls={n: d.url for n, d in dbs.items()},
        database_schemas={n: d.schema for n, d in dbs.items() if d.schema},
        ports={name: free_port() for name in SERVICES},
        extra_env={
            "AUTH_DEV_SECRET": TEST_SECRET,
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            # The checker reads every post's timeline with one ops token: the per-person budget (429) is
            # not what these tests are about (tests/security/test_limits.py is).
            "RATE_LIMIT_REQUESTS_PER_SECOND": "100000",
            "RATE_LIMIT_BURST": "100000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "400",
            "KAFKA_TOPIC_PARTITIONS": "3",
            "LOG_LEVEL": "INFO",
        },
        echo=bool(os.environ.get("E2E_ECHO")),
    )
    try:
        p.start()
        yield p
    finally:
        p.stop()


def post_body(external_id: str) -> dict[str, Any]:
    return {
        "platform": "facebook",
        "external_id": external_id,
        "account": "TransportNSW",
        "text": f"Question {external_id}: is the ferry running?",
        "author": {"id": f"author-{external_id}", "handle": "someone"},
        "created_at": "2026-11-26T08:00:00Z",
    }


async def timeline_types(client: httpx.AsyncClient, metrics_url: str, post_id: str) -> list[str]:
    r = await client.get(f"{metrics_url}/v1/posts/{post_id}/timeline", headers=OPS)
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return [e["type"] for e in r.json()["events"]]


async def wait_all_complete(
    platform: Platform, post_ids: list[str], within: float = 240.0
) -> dict[str, list[str]]:
    metrics_url = platform.services["metrics"].url
    pending = set(post_ids)
    seen: dict[str, list[str]] = {}
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=5.0) as client:
        while pending and time.monotonic() < deadline:
            for post_id in list(pending):
                types = await timeline_types(client, metrics_url, post_id)
                seen[post_id] = types
                if len(types) >= len(PIPELINE):
                    pending.discard(post_id)
            if pending:
                await asyncio.sleep(0.2)
        # One more look at every post: anything beyond the pipeline is a duplicate effect.
        for post_id in post_ids:
            seen[post_id] = await timeline_types(client, metrics_url, post_id)
    return seen


async def test_a_post_goes_from_ingest_to_its_timeline(platform: Platform) -> None:
    ingest = platform.services["ingest"].url
    async with httpx.AsyncClient(timeout=5.0) as client:
        started = time.monotonic()
        r = await client.post(f"{ingest}/v1/posts", json=post_body("e2e-1"), headers=AGENCY)
        assert r.status_code == 202, r.text
        post_id = r.json()["id"]
        types: list[str] = []
        while time.monotonic() - started < 30 and types != PIPELINE:
            types = await timeline_types(client, platform.services["metrics"].url, post_id)
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
    assert types == PIPELINE
    print(f"\npost -> received, screened, assigned in metrics' timeline after {elapsed * 1000:.0f} ms")


async def test_no_post_is_lost_or_assigned_twice_when_services_crash(platform: Platform) -> None:
    """Crash every service during a stream: routing between its DB commit and its offset commit,
    ingest's relay between the broker's acknowledgement and the outbox delete, policy by SIGKILL,
    metrics by SIGTERM."""
    ingest_url = platform.services["ingest"].url
    accepted: dict[str, str] = {}
    run_id = uuid.uuid4().hex[:8]
    minimum = 100

    chaos_done = asyncio.Event()

    async def send_all() -> None:
        """A steady stream that lasts until every crash is over (and at least ``minimum`` posts)."""
        async with httpx.AsyncClient(timeout=3.0) as client:
            i = 0
            while not chaos_done.is_set() or i < minimum:
                i += 1
                external_id = f"{run_id}-{i}"
                while True:  # an agency system retries until it gets a durable 202
                    try:
                        r = await client.post(
                            f"{ingest_url}/v1/posts", json=post_body(external_id), headers=AGENCY
                        )
                        if r.status_code == 202:
                            accepted[external_id] = r.json()["id"]
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.05)

    async def crash_at(name: str, failpoint: str) -> float:
        """Restart ``name`` with a fail-point armed, wait for it to hit it, restart it clean."""
        loop = asyncio.get_running_loop()
        platform.services[name].stop()
        # Not waiting for readiness: the fail-point may be hit during start-up (e.g. the relay publishing
        # rows left in the outbox by the stop).
        await loop.run_in_executor(
            None, lambda: platform.restart(name, env={"SWITCHBOARD_FAILPOINTS": failpoint}, wait=False)
        )
        process = platform.services[name].process
        assert process is not None
        returncode = await loop.run_in_executor(None, lambda: process.wait(180))
        assert returncode == 137, f"the fail-point {failpoint} should have ended {name}"
        t0 = time.monotonic()
        await loop.run_in_executor(None, lambda: platform.restart(name, env={"SWITCHBOARD_FAILPOINTS": ""}))
        return time.monotonic() - t0

    async def chaos() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        recovery: dict[str, float] = {}
        # Routing dies exactly between its database commit and its offset commit.
        recovery["routing, after DB commit before offset commit"] = await crash_at(
            "routing", "consumer.after_db_commit"
        )
        # Ingest's relay dies after the broker acknowledged a batch and before marking it sent.
        recovery["ingest, after send before outbox delete"] = await crash_at("ingest", "outbox.after_send")
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        platform.services["policy"].kill()
        await loop.run_in_executor(None, lambda: platform.restart("policy"))
        recovery["policy, SIGKILL"] = time.monotonic() - t0
        await asyncio.sleep(0.5)
        # SIGTERM: metrics drains its batch, commits and exits cleanly (no SIGKILL needed).
        t0 = time.monotonic()
        returncode = await loop.run_in_executor(None, platform.services["metrics"].stop)
        # uvicorn re-raises the signal once its graceful shutdown is done; -SIGKILL would mean it hung.
        assert returncode in (0, -signal.SIGTERM), f"metrics ended with {returncode}"
        recovery["metrics, SIGTERM (graceful exit)"] = time.monotonic() - t0
        await loop.run_in_executor(None, lambda: platform.restart("metrics"))
        return recovery

    sender = asyncio.create_task(send_all())
    await asyncio.sleep(0.5)
    try:
        recovery = await chaos()
    finally:
        chaos_done.set()
    await sender
    assert len(accepted) >= minimum

    seen = await wait_all_complete(platform, list(accepted.values()))
    lost = [p for p, types in seen.items() if len(types) < len(PIPELINE)]
    duplicated = [p for p, types in seen.items() if len(types) > len(PIPELINE)]
    print(f"\nposts accepted: {len(accepted)}, lost: {len(lost)}, duplicate effects: {len(duplicated)}")
    print("seconds to recover: " + "; ".join(f"{k}: {v:.1f}" for k, v in recovery.items()))
    assert lost == []
    assert duplicated == []
    assert all(types == PIPELINE for types in seen.values())
