"""Platform health for ops: probing the services, reading their Prometheus metrics, collecting dead letters.

Probing never raises: a service that does not answer, answers slowly or answers garbage is reported
``down`` with the reason, so ``GET /v1/ops/status`` answers while any part of the platform is down.
Dead-letter values are the original messages (they may hold personal information): they are stored only to
be replayed and never appear in a response or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from services.metrics.repository import DeadLetterRepository
from shared.config import KafkaSettings
from shared.db.engine import Database
from shared.logging import get_logger

log = get_logger(__name__)

#: Every dead-letter topic of every consumer group: ``<topic>.dlq.<group>``.
DEAD_LETTER_PATTERN = r"^.+\.dlq\..+$"
DEAD_LETTER_GROUP = "metrics.dead_letters"
MAX_METRICS_BYTES = 5 * 1_048_576
MAX_HEADER_VALUE = 1000
# Validation errors quote the offending input, which may be a post's text: keep the error, drop the input.
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]|$)", re.DOTALL)


def redact_error(error: str) -> str:
    return _INPUT_VALUE.sub("input_value=<redacted>", error)[:MAX_HEADER_VALUE]


@dataclass
class ServiceProbe:
    name: str
    url: str
    status: str  # "up", "not_ready" or "down"
    checks: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    consumer_lag: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    dead_letters_since_start: dict[str, dict[str, int]] = field(default_factory=dict)


def parse_service_metrics(
    text: str,
) -> tuple[dict[str, dict[str, dict[str, int]]], dict[str, dict[str, int]]]:
    """(lag[group][topic][partition], dead letters since process start[group][topic]) from exposition text."""
    lag: dict[str, dict[str, dict[str, int]]] = {}
    dead: dict[str, dict[str, int]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "switchboard_consumer_lag":
                group = lag.setdefault(labels.get("group", ""), {})
                group.setdefault(labels.get("topic", ""), {})[labels.get("partition", "")] = int(sample.value)
            elif sample.name == "switchboard_dead_letters_total":
                dead.setdefault(labels.get("group", ""), {})[labels.get("topic", "")] = int(sample.value)
    return lag, dead


async def probe_service(
    client: httpx.AsyncClient, *, name: str, url: str, probe_timeout: float
) -> ServiceProbe:
    base = url.rstrip("/")
    try:
        ready = await client.get(f"{base}/readyz", timeout=probe_timeout)
    except (httpx.HTTPError, OSError) as exc:
        return ServiceProbe(name=name, url=url, status="down", error=type(exc).__name__)
    try:
        body = ready.json()
        checks = {str(k)[:100]: str(v)[:200] for k, v in dict(body.get("checks", {})).items()}
    except (ValueError, AttributeError, TypeError):
        return ServiceProbe(name=name, url=url, status="down", error=f"readyz answered {ready.status_code}")
    probe = ServiceProbe(
        name=name, url=url, status="up" if ready.status_code == 200 else "not_ready", checks=checks
    )
    try:
        metrics = await client.get(f"{base}/metrics", timeout=probe_timeout)
        if metrics.status_code == 200 and len(metrics.content) <= MAX_METRICS_BYTES:
            probe.consumer_lag, probe.dead_letters_since_start = parse_service_metrics(metrics.text)
    except (httpx.HTTPError, OSError, ValueError) as exc:
        probe.error = f"metrics: {type(exc).__name__}"
    return probe


async def probe_all(urls: Mapping[str, str], *, probe_timeout: float) -> list[ServiceProbe]:
    async with httpx.AsyncClient(follow_redirects=False) as client:
        return list(
            await asyncio.gather(
                *(
                    probe_service(client, name=n, url=u, probe_timeout=probe_timeout)
                    for n, u in sorted(urls.items())
                )
            )
        )


def dead_letter_values(record: ConsumerRecord[bytes, bytes], *, now: datetime) -> dict[str, Any]:
    """The ``dead_letter`` row of one message of a dead-letter topic (tolerant of any value)."""
    headers = {k: v.decode(errors="replace")[:MAX_HEADER_VALUE] for k, v in (record.headers or ())}
    event_id: str | None = None
    event_type: str | None = None
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        head = json.loads(record.value or b"")
        event_id = str(head.get("id"))[:200] if head.get("id") else None
        event_type = str(head.get("type"))[:200] if head.get("type") else None

    def as_int(name: str) -> int | None:
        try:
            return int(headers[name])
        except (KeyError, ValueError):
            return None

    return {
        "dlq_topic": record.topic,
        "dlq_partition": record.partition,
        "dlq_offset": record.offset,
        "original_topic": headers.get("dlq_original_topic", "")[:300] or None,
        "original_partition": as_int("dlq_original_partition"),
        "original_offset": as_int("dlq_original_offset"),
        "consumer_group": headers.get("dlq_consumer_group", "")[:200] or None,
        "error": redact_error(headers["dlq_error"]) if headers.get("dlq_error") else None,
        "event_id": event_id,
        "event_type": event_type,
        "key": (record.key or b"").decode(errors="replace")[:200] or None,
        "value": record.value or b"",
        "headers": headers,
        "received_at": now,
        "replay_count": 0,
    }


def replay_headers(headers: Mapping[str, str], *, replay_id: str) -> dict[str, str]:
    """The original message's headers without the dead-letter bookkeeping, plus the replay marker."""
    out = {k: v for k, v in headers.items() if not k.startswith("dlq_")}
    out["dlq_replay_id"] = replay_id
    return out


class DeadLetterCollector:
    """Copies each message of every dead-letter topic into ``dead_letter``, once per topic, partition, offset.

    Subscribes by pattern so that a new service's or group's dead-letter topic is found without configuration
    (within ``metadata_max_age_ms``). Offsets are committed after the rows commit.
    """

    def __init__(self, *, db: Database, settings: KafkaSettings, refresh_ms: int, client_id: str) -> None:
        self.db = db
        self.settings = settings
        self.refresh_ms = refresh_ms
        self.client_id = client_id
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.client_id_prefix}.{self.client_id}",
            group_id=DEAD_LETTER_GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Dead letters are rare and nobody waits on them: the idle wait (the embedded broker holds every
            # fetch for the whole wait, so the short one cost ~5% of a core polling 100 times a second).
            fetch_max_wait_ms=s.idle_fetch_max_wait_ms,
            metadata_max_age_ms=self.refresh_ms,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            request_timeout_ms=s.request_timeout_ms,
        )
        self.consumer.subscribe(pattern=DEAD_LETTER_PATTERN)
        await self.consumer.start()
        self._task = asyncio.create_task(self._run(), name="dead-letter-collector")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            except (TimeoutError, asyncio.CancelledError, Exception):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()

    async def _run(self) -> None:
        assert self.consumer is not None  # noqa: S101
        while not self._stopping:
            try:
                batches = await self.consumer.getmany(timeout_ms=200, max_records=500)
            except KafkaError as exc:
                log.warning("dead_letter_fetch_failed", error_type=type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            if not batches:
                continue
            await self._store_with_retry(batches)
            with contextlib.suppress(KafkaError):
                # A lost commit re-reads the batch later; the unique key absorbs it.
                await self.consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batches.items()})

    async def _store_with_retry(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        backoff = 0.2
        while True:
            try:
                await self.store(batches, now=datetime.now(UTC))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database is unwell: keep the batch in hand and commit no offset until it is stored.
                log.warning("dead_letter_store_failed", error_type=type(exc).__name__)
                if self._stopping:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def store(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]], *, now: datetime
    ) -> int:
        added = 0
        async with self.db.transaction() as session:
            repo = DeadLetterRepository(session)
            for records in batches.values():
                for record in records:
                    added += await repo.add_if_new(dead_letter_values(record, now=now))
        if added:
            log.info("dead_letters_collected", count=added)
        return added
