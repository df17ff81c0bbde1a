"""B0, the ceiling: raw aiokafka through the same broker and the same number of hops as the platform.

producer -> t1 -> relay -> t2 -> relay -> t3 -> sink, with the platform's payload size, batching
(``getmany``), per-batch commits and keys. No database, no validation: what Kafka and aiokafka alone cost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.loadgen import percentile
from shared.config import KafkaSettings
from shared.kafka.producer import ensure_topics


@dataclass
class RelayResult:
    sent: int
    received: int
    duplicates: int
    elapsed: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.received / self.elapsed if self.elapsed else 0.0


async def _relay(
    bootstrap: str, source: str, target: str, group: str, stop: asyncio.Event, fetch_wait: int
) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_wait,
        session_timeout_ms=2000,
        heartbeat_interval_ms=400,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            futures = []
            for records in batches.values():
                for r in records:
                    futures.append(await producer.send(target, value=r.value, key=r.key))
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


async def run_relay(
    *, kafka: KafkaSettings, rate: float, duration: float, payload_bytes: int = 600
) -> RelayResult:
    run = uuid.uuid4().hex[:8]
    t1, t2, t3 = (f"bench.b0.{run}.{i}" for i in (1, 2, 3))
    await ensure_topics(kafka, [t1, t2, t3], client_id="bench")
    stop = asyncio.Event()
    relays = [
        asyncio.create_task(
            _relay(kafka.bootstrap_servers, t1, t2, f"b0.{run}.a", stop, kafka.fetch_max_wait_ms)
        ),
        asyncio.create_task(
            _relay(kafka.bootstrap_servers, t2, t3, f"b0.{run}.b", stop, kafka.fetch_max_wait_ms)
        ),
    ]
    sink = AIOKafkaConsumer(
        t3,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=f"b0.{run}.sink",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        session_timeout_ms=2000,
        heartbeat_interval_ms=400,
    )
    await sink.start()
    await asyncio.sleep(2.0)  # let the groups form before the clock starts
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all", linger_ms=2)
    await producer.start()
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []
    seen: set[bytes] = set()
    duplicates = 0
    total = int(rate * duration)
    filler = b"x" * payload_bytes

    async def consume() -> None:
        nonlocal duplicates
        while len(seen) < total:
            batches = await sink.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batches.values():
                for r in records:
                    key = r.key or b""
                    if key in seen:
                        duplicates += 1
                        continue
                    seen.add(key)
                    latencies.append(now - sent_at[key])

    consumer_task = asyncio.create_task(consume())
    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        key = f"{run}-{i}".encode()
        sent_at[key] = scheduled
        await producer.send(t1, value=key + filler, key=key)
    try:
        await asyncio.wait_for(consumer_task, timeout=max(30.0, duration * 3))
    except TimeoutError:
        consumer_task.cancel()
    elapsed = time.perf_counter() - start
    stop.set()
    await asyncio.gather(*relays, return_exceptions=True)
    await producer.stop()
    await sink.stop()
    return RelayResult(
        sent=total, received=len(seen), duplicates=duplicates, elapsed=elapsed, latencies=latencies
    )


def summary(result: RelayResult) -> dict[str, float]:
    return {
        "rate": result.rate,
        "p50_ms": percentile(result.latencies, 50) * 1000,
        "p99_ms": percentile(result.latencies, 99) * 1000,
        "lost": result.sent - result.received,
        "duplicates": result.duplicates,
    }
