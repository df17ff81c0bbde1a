"""The outbox relay and the inbox-guarded consumer over the real broker and database.

A tiny test service (its own tables) stands in for a business service: the handler writes one ``effect`` row
per event, so "exactly-once effects" is a row count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import String, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.config import KafkaSettings
from shared.contracts import PostReceivedV1, new_event
from shared.contracts.envelope import Envelope
from shared.contracts.topics import Topic, dead_letter_topic
from shared.db import TYPE_ANNOTATION_MAP, Database, new_metadata
from shared.kafka import ConsumerRunner, EventRouter, HandlerContext, InboxMixin, OutboxMixin, OutboxRelay
from shared.kafka.outbox import OutboxWriter
from shared.kafka.producer import ensure_topics, make_producer
from tests.support import database_with_tables

pytestmark = pytest.mark.kafka
GROUP = "test.effects"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Effect(Base):
    __tablename__ = "effect"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    post_id: Mapped[str] = mapped_column(String(64))


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


def received(post_id: str, text: str = "hello") -> Envelope[PostReceivedV1]:
    data = PostReceivedV1(
        post_id=post_id,
        platform="x",
        external_id=post_id,
        account="@agency",
        author_ref="ref",
        text=text,
        created_at=NOW,
        received_at=NOW,
    )
    return new_event(data, source="/test")


class Harness:
    def __init__(self, db: Database, kafka: KafkaSettings) -> None:
        self.db = db
        self.kafka = kafka
        self.calls: dict[str, int] = {}
        self.infra_failures_left = 0
        self.router = EventRouter()
        self.router.add(PostReceivedV1, self.handle)
        self.runners: list[ConsumerRunner] = []

    async def handle(self, ctx: HandlerContext, envelope: Envelope[Any]) -> None:
        self.calls[envelope.id] = self.calls.get(envelope.id, 0) + 1
        if envelope.data.text == "boom":
            raise ValueError("handler cannot handle this")
        if self.infra_failures_left > 0:
            self.infra_failures_left -= 1
            raise sa_exc.OperationalError("SELECT 1", {}, ConnectionError("database went away"))
        ctx.session.add(Effect(event_id=envelope.id, post_id=envelope.data.post_id))

    def runner(self, *, replay: bool = False) -> ConsumerRunner:
        runner = ConsumerRunner(
            replay_from_beginning=replay,
            group_id=GROUP,
            router=self.router,
            db=self.db,
            inbox_model=Inbox,
            outbox=OutboxWriter(Outbox),
            settings=self.kafka,
            client_id="test",
        )
        self.runners.append(runner)
        return runner

    async def effects(self) -> int:
        async with self.db.transaction() as s:
            return int(await s.scalar(select(func.count()).select_from(Effect)) or 0)

    async def wait_effects(self, n: int, within: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            if await self.effects() >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {n} effects, have {await self.effects()}")


@pytest.fixture
async def harness(db_factory: Callable[[str], Any], kafka_settings: KafkaSettings) -> AsyncIterator[Harness]:
    target = db_factory("kafkalayer")
    db = await database_with_tables(target, Base.metadata)
    await ensure_topics(
        kafka_settings,
        [Topic.POSTS_RECEIVED, dead_letter_topic(Topic.POSTS_RECEIVED, GROUP)],
        client_id="test",
    )
    h = Harness(db, kafka_settings)
    yield h
    for r in h.runners:
        await r.stop()
    await db.dispose()


@asynccontextmanager
async def relay_running(harness: Harness) -> AsyncIterator[None]:
    producer = make_producer(harness.kafka, client_id="relay")
    await producer.start()
    relay = OutboxRelay(db=harness.db, model=Outbox, producer=producer, lock_name="t", poll_interval=0.05)
    relay.start()
    try:
        yield
    finally:
        await relay.stop()
        await producer.stop()


async def produce_raw(kafka: KafkaSettings, items: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(kafka, client_id="test-producer")
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(Topic.POSTS_RECEIVED, value=value, key=key)
    finally:
        await producer.stop()


async def read_topic(kafka: KafkaSettings, topic: str, expect: int, within: float = 15.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + within
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
        # Linger briefly: anything beyond `expect` is a duplicate the test must see.
        batch = await consumer.getmany(timeout_ms=300)
        for recs in batch.values():
            records.extend(recs)
    finally:
        await consumer.stop()
    return records


class TestOutboxRelay:
    async def test_committed_rows_are_published_keyed_by_post_id_then_deleted(self, harness: Harness) -> None:
        writer = OutboxWriter(Outbox)
        envelopes = [received(f"post-{i}") for i in range(5)]
        async with harness.db.transaction() as s:
            for env in envelopes:
                writer.add(s, env, correlation_id="corr-1")
        async with relay_running(harness):
            records = await read_topic(harness.kafka, Topic.POSTS_RECEIVED, expect=5)
        assert sorted(r.key.decode() for r in records) == sorted(f"post-{i}" for i in range(5))
        for record in records:
            doc = orjson.loads(record.value)
            assert doc["specversion"] == "1.0"
            assert doc["subject"] == record.key.decode()
            assert dict(record.headers)["correlation_id"] == b"corr-1"
        async with harness.db.transaction() as s:
            assert await s.scalar(select(func.count()).select_from(Outbox)) == 0

    async def test_rolled_back_rows_are_never_published(self, harness: Harness) -> None:
        writer = OutboxWriter(Outbox)

        async def unit_of_work_that_fails() -> None:
            async with harness.db.transaction() as s:
                writer.add(s, received("rolled-back"))
                raise RuntimeError("abort the unit of work")

        with pytest.raises(RuntimeError):
            await unit_of_work_that_fails()
        async with harness.db.transaction() as s:
            writer.add(s, received("committed"))
        async with relay_running(harness):
            records = await read_topic(harness.kafka, Topic.POSTS_RECEIVED, expect=1)
        assert [r.key for r in records] == [b"committed"]

    async def test_a_commit_during_a_relay_pass_is_published_without_waiting_for_the_next_poll(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A commit that lands while the relay publishes wakes it again (the wake-up is not lost): with a
        60 s poll period, the second row still goes out at once."""
        writer = OutboxWriter(Outbox)
        async with harness.db.transaction() as s:
            writer.add(s, received("first"))
        producer = make_producer(harness.kafka, client_id="relay")
        await producer.start()
        relay = OutboxRelay(db=harness.db, model=Outbox, producer=producer, lock_name="t", poll_interval=60)
        real_send = relay._send
        passes: list[int] = []

        async def send_then_commit(rows: list[Any]) -> None:
            await real_send(rows)
            passes.append(len(rows))
            if len(passes) == 1:  # during the first pass, another unit of work commits a row
                async with harness.db.transaction() as s:
                    writer.add(s, received("second"))

        monkeypatch.setattr(relay, "_send", send_then_commit)
        relay.start()
        try:
            records = await read_topic(harness.kafka, Topic.POSTS_RECEIVED, expect=2, within=10)
        finally:
            await relay.stop()
            await producer.stop()
        assert sorted(r.key for r in records) == [b"first", b"second"]


class TestInboxConsumer:
    async def test_each_event_takes_effect_once_even_when_delivered_twice(self, harness: Harness) -> None:
        envelopes = [received(f"p{i}") for i in range(20)]
        raw = [(e.subject.encode(), e.model_dump_json().encode()) for e in envelopes]
        await produce_raw(harness.kafka, raw + raw[:10])  # the first ten are delivered twice
        await harness.runner().start()
        await harness.wait_effects(20)
        await asyncio.sleep(0.5)
        assert await harness.effects() == 20
        assert all(n == 1 for n in harness.calls.values())

    async def test_a_broken_kafka_client_is_replaced_and_consumption_resumes(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Fault F5 met aiokafka raising an AssertionError after rebalance churn, which used to end
        consumption silently. Here the client's fetch raises once, after the first events were handled: the
        runner reports not ready, starts a fresh client that rejoins the group, and every event still takes
        effect exactly once."""
        first = [received(f"a{i}") for i in range(5)]
        later = [received(f"b{i}") for i in range(5)]
        await produce_raw(harness.kafka, [(e.subject.encode(), e.model_dump_json().encode()) for e in first])
        runner = harness.runner()
        breaks = {"armed": False, "raised": 0}
        real_getmany = AIOKafkaConsumer.getmany

        async def getmany(self: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> Any:
            if breaks["armed"]:
                breaks["armed"] = False
                breaks["raised"] += 1
                raise AssertionError("the client's internal state is broken")
            return await real_getmany(self, *args, **kwargs)

        monkeypatch.setattr(AIOKafkaConsumer, "getmany", getmany)
        await runner.start()
        await harness.wait_effects(5)
        broken_client = runner.consumer
        breaks["armed"] = True
        await produce_raw(harness.kafka, [(e.subject.encode(), e.model_dump_json().encode()) for e in later])
        await harness.wait_effects(10)
        assert breaks["raised"] == 1
        assert runner.consumer is not broken_client  # a fresh client took over
        assert runner.healthy
        assert await harness.effects() == 10
        assert all(n == 1 for n in harness.calls.values())

    async def test_replay_from_the_earliest_offset_changes_nothing(self, harness: Harness) -> None:
        envelopes = [received(f"p{i}") for i in range(30)]
        await produce_raw(
            harness.kafka, [(e.subject.encode(), e.model_dump_json().encode()) for e in envelopes]
        )
        first = harness.runner()
        await first.start()
        await harness.wait_effects(30)
        await first.stop()
        async with harness.db.transaction() as s:
            inbox_before = await s.scalar(select(func.count()).select_from(Inbox))

        calls_before = dict(harness.calls)
        second = harness.runner(replay=True)  # the same group, reading from the earliest offset
        await second.start()
        await asyncio.sleep(3)
        assert await harness.effects() == 30
        assert harness.calls == calls_before  # handlers were not even called again
        async with harness.db.transaction() as s:
            assert await s.scalar(select(func.count()).select_from(Inbox)) == inbox_before

    async def test_poison_messages_are_dead_lettered_and_healthy_ones_flow(self, harness: Harness) -> None:
        good = [received(f"good-{i}") for i in range(10)]
        boom = received("boom-post", text="boom")
        schema_invalid = orjson.loads(received("bad-schema").model_dump_json())
        schema_invalid["data"]["platform"] = "myspace"
        items = [(e.subject.encode(), e.model_dump_json().encode()) for e in good[:5]]
        items += [
            (b"bad-json", b"{this is not json"),
            (b"bad-schema", orjson.dumps(schema_invalid)),
            (b"boom-post", boom.model_dump_json().encode()),
        ]
        items += [(e.subject.encode(), e.model_dump_json().encode()) for e in good[5:]]
        await produce_raw(harness.kafka, items)

        async with relay_running(harness):
            await harness.runner().start()
            await harness.wait_effects(10)
            dead = await read_topic(harness.kafka, dead_letter_topic(Topic.POSTS_RECEIVED, GROUP), expect=3)

        assert sorted(r.key for r in dead) == [b"bad-json", b"bad-schema", b"boom-post"]
        by_key = {r.key: dict(r.headers) for r in dead}
        assert by_key[b"boom-post"]["dlq_error"].startswith(b"ValueError: handler cannot handle this")
        assert by_key[b"boom-post"]["dlq_attempts"] == str(harness.kafka.handler_max_attempts).encode()
        assert by_key[b"bad-schema"]["dlq_error"].startswith(b"ValidationError")
        assert by_key[b"bad-json"]["dlq_original_topic"] == Topic.POSTS_RECEIVED.encode()
        assert by_key[b"bad-json"]["dlq_consumer_group"] == GROUP.encode()
        # The dead-lettered payload is the original, byte for byte, so it can be replayed after a fix.
        assert next(r.value for r in dead if r.key == b"bad-json") == b"{this is not json"
        assert harness.calls[boom.id] == harness.kafka.handler_max_attempts
        assert await harness.effects() == 10

    async def test_database_trouble_is_retried_not_dead_lettered(self, harness: Harness) -> None:
        harness.infra_failures_left = 2
        envelopes = [received(f"p{i}") for i in range(3)]
        await produce_raw(
            harness.kafka, [(e.subject.encode(), e.model_dump_json().encode()) for e in envelopes]
        )
        await harness.runner().start()
        await harness.wait_effects(3)
        async with harness.db.transaction() as s:
            outcomes = list((await s.execute(select(Inbox.outcome))).scalars())
        assert outcomes == ["handled"] * 3
