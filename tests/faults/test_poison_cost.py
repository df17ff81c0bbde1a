"""F4's throughput property measured as work, not wall-clock: with 1 % poison in a stream, the consumer
runner calls healthy messages' handlers at most once more per poison message for the messages of one
checkpoint (``CHECKPOINT``), so the healthy messages get at least 90 % of the handler work of a clean run.

Counting handler calls is exact and immune to the machine's load; test_poison.py measures the same property
in wall-clock at platform level (and reports it, since a shared 2-core machine makes that noisy).
"""

from __future__ import annotations

import pytest

from shared.contracts.topics import Topic, dead_letter_topic
from shared.kafka.consumer import CHECKPOINT
from tests.integration.test_kafka_layer import (
    GROUP,
    Harness,
    harness,  # noqa: F401 - the fixture
    produce_raw,
    read_topic,
    received,
    relay_running,
)

pytestmark = pytest.mark.kafka

HEALTHY = 300
POISON = 3  # of each kind: 6 in 306, 2 %


async def test_poison_costs_healthy_messages_at_most_one_checkpoint_each(
    harness: Harness,  # noqa: F811
) -> None:
    good = [received(f"good-{i}") for i in range(HEALTHY)]
    items = []
    for i, envelope in enumerate(good):
        items.append((envelope.subject.encode(), envelope.model_dump_json().encode()))
        if i % (HEALTHY // POISON) == HEALTHY // POISON // 2:
            boom = received(f"boom-{i}", text="boom")
            items.append((boom.subject.encode(), boom.model_dump_json().encode()))
            items.append((f"bad-{i}".encode(), b"{not json"))
    await produce_raw(harness.kafka, items)

    async with relay_running(harness):
        await harness.runner().start()
        await harness.wait_effects(HEALTHY, within=120)
        dead = await read_topic(
            harness.kafka, dead_letter_topic(Topic.POSTS_RECEIVED, GROUP), expect=2 * POISON, within=60
        )

    healthy_calls = sum(harness.calls[e.id] for e in good)
    work_ratio = HEALTHY / healthy_calls
    print(
        f"\npoison cost: {healthy_calls} calls for {HEALTHY} healthy messages, {2 * POISON} poison: "
        f"{work_ratio:.0%} of the work is useful (bound: one checkpoint of {CHECKPOINT} per failing handler)"
    )
    assert len(dead) == 2 * POISON
    assert await harness.effects() == HEALTHY
    assert healthy_calls <= HEALTHY + POISON * (CHECKPOINT - 1)
    assert work_ratio >= 0.9
