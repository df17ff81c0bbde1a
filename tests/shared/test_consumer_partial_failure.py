"""Partial batch failure in the consumer runner (``each_item``), on a real database, without a broker.

The runner is given fetched records directly (``ConsumerRunner.handle_records``, what each poll does before
committing offsets), so every test chooses exactly which messages share a batch. A tiny test service stands in
for a business one: its batch handler decides per item with ``each_item`` (the per-item phase, where the
test's poison raises) and then writes one ``applied`` row per successful item (the write phase); ``applied``'s
autoincrement id is the order in which effects were committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import BigInteger, Integer, String, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import failpoints
from shared.config import KafkaSettings
from shared.contracts import PostReceivedV1, new_event
from shared.contracts.envelope import Envelope
from shared.contracts.topics import Topic, dead_letter_topic
from shared.db import TYPE_ANNOTATION_MAP, Database, new_metadata
from shared.kafka import ConsumerRunner, EventRouter, HandlerContext, InboxMixin, OutboxMixin
from shared.kafka.consumer import CHECKPOINT, each_item
from shared.kafka.outbox import OutboxWriter
from tests.support import database_with_tables

GROUP = "test.partial"
MAX_ATTEMPTS = 3
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Applied(Base):
    __tablename__ = "applied"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    post_id: Mapped[str] = mapped_column(String(64))


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


def received(post_id: str, text: str = "hello") -> Envelope[PostReceivedV1]:
    data = PostReceivedV1(
        post_id=post_id,
        platform="x",
        external_id=f"{post_id}-{text}",
        account="@agency",
        author_ref="ref",
        text=text,
        created_at=NOW,
        received_at=NOW,
    )
    return new_event(data, source="/test")


class Service:
    """The test service. ``text`` decides an event's fate:

    - ``boom``: its per-item phase always raises (a poison message);
    - ``flaky``: its per-item phase raises on the first call only;
    - ``bad-write``: the batch write raises whenever the event is in it (not an item's per-item failure).
    """

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        #: every per-item phase call, in order: the order the runner decided events in
        self.log: list[str] = []
        self.infra_failures_left = 0
        self.router = EventRouter()
        self.router.add_batch(PostReceivedV1, self.on_batch)

    def decide(self, _ctx: HandlerContext, envelope: Envelope[Any]) -> Envelope[Any]:
        self.calls[envelope.id] = self.calls.get(envelope.id, 0) + 1
        self.log.append(envelope.id)
        if self.infra_failures_left > 0:
            self.infra_failures_left -= 1
            raise sa_exc.OperationalError("SELECT 1", {}, ConnectionError("database went away"))
        if envelope.data.text == "boom" or (envelope.data.text == "flaky" and self.calls[envelope.id] == 1):
            raise ValueError("cannot handle this post")
        return envelope

    async def on_batch(self, batch: list[tuple[HandlerContext, Envelope[Any]]]) -> None:
        decided = each_item(batch, self.decide)
        if any(e.data.text == "bad-write" for _, e in decided):
            raise RuntimeError("the batch write failed")
        for ctx, envelope in decided:
            ctx.session.add(Applied(event_id=envelope.id, post_id=envelope.data.post_id))


class Fixture:
    def __init__(self, db: Database, service: Service) -> None:
        self.db = db
        self.service = service
        self.runner = ConsumerRunner(
            group_id=GROUP,
            router=service.router,
            db=db,
            inbox_model=Inbox,
            outbox=OutboxWriter(Outbox),
            settings=KafkaSettings(handler_max_attempts=MAX_ATTEMPTS, handler_retry_backoff_ms=1),
            client_id="test",
        )

    async def applied(self) -> list[str]:
        """Event ids of the committed effects, in the order they were committed."""
        async with self.db.transaction() as s:
            return list((await s.execute(select(Applied.event_id).order_by(Applied.id))).scalars())

    async def dead_letters(self) -> dict[str, dict[str, Any]]:
        async with self.db.transaction() as s:
            rows = (await s.execute(select(Outbox).order_by(Outbox.id))).scalars().all()
        assert all(r.topic == dead_letter_topic(Topic.POSTS_RECEIVED, GROUP) for r in rows)
        return {r.event_id: r.headers for r in rows}

    async def inbox(self) -> dict[str, str]:
        async with self.db.transaction() as s:
            return dict((await s.execute(select(Inbox.event_id, Inbox.outcome))).all())

    async def count(self, model: type[Base]) -> int:
        async with self.db.transaction() as s:
            return int(await s.scalar(select(func.count()).select_from(model)) or 0)


def records(*placed: tuple[int, Envelope[Any] | bytes]) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of ``posts.received.v1`` as a fetch returns them: (partition, envelope or raw value), each
    partition's offsets counting up in the order given, keyed by the post id as the outbox keys them."""
    next_offset: dict[int, int] = {}
    out: list[ConsumerRecord[bytes, bytes]] = []
    for partition, message in placed:
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        if isinstance(message, bytes):
            key, value = b"undecodable", message
        else:
            key, value = message.subject.encode(), message.model_dump_json().encode()
        out.append(
            ConsumerRecord(
                topic=Topic.POSTS_RECEIVED,
                partition=partition,
                offset=offset,
                timestamp=0,
                timestamp_type=0,
                key=key,
                value=value,
                checksum=None,
                serialized_key_size=len(key),
                serialized_value_size=len(value),
                headers=[],
            )
        )
    return out


@pytest.fixture
async def fx(db_factory: Callable[[str], Any]) -> AsyncIterator[Fixture]:
    target = db_factory("partial")
    db = await database_with_tables(target, Base.metadata)
    yield Fixture(db, Service())
    await db.dispose()


@pytest.fixture
def armed_failpoint() -> Iterator[str]:
    marker = "POISON-MARK"
    saved = dict(failpoints._ACTIVE)
    failpoints._ACTIVE["consumer.handler_raises"] = marker
    yield marker
    failpoints._ACTIVE.clear()
    failpoints._ACTIVE.update(saved)


async def test_healthy_items_are_committed_once_and_the_failed_one_is_retried_then_dead_lettered(
    fx: Fixture,
) -> None:
    good = [received(f"good-{i}") for i in range(10)]
    boom = received("boom-post", text="boom")
    batch = records(
        *[(i % 3, e) for i, e in enumerate(good[:5])],
        (2, boom),
        *[(i % 3, e) for i, e in enumerate(good[5:])],
    )

    await fx.runner.handle_records(batch)

    assert sorted(await fx.applied()) == sorted(e.id for e in good)
    assert all(fx.service.calls[e.id] == 1 for e in good)  # partial failure: no healthy item redone
    assert fx.service.calls[boom.id] == MAX_ATTEMPTS
    dead = await fx.dead_letters()
    assert list(dead) == [boom.id]
    headers = dead[boom.id]
    boom_record = next(r for r in batch if r.value == boom.model_dump_json().encode())
    assert headers["dlq_error"].startswith("ValueError: cannot handle this post")
    assert headers["dlq_attempts"] == str(MAX_ATTEMPTS)
    assert headers["dlq_original_topic"] == Topic.POSTS_RECEIVED
    assert headers["dlq_original_partition"] == str(boom_record.partition)
    assert headers["dlq_original_offset"] == str(boom_record.offset)
    assert headers["dlq_consumer_group"] == GROUP
    assert headers["dlq_failed_at"]
    inbox = await fx.inbox()
    assert inbox == {**{e.id: "handled" for e in good}, boom.id: "dead_lettered"}


async def test_a_later_item_of_the_failed_key_is_applied_after_it_in_order(fx: Fixture) -> None:
    # Post A's first event fails once (then succeeds on retry); A's later events are in the same batch,
    # interleaved with post B's on another partition.
    a1, a2, a3 = (
        received("post-a", text="flaky"),
        received("post-a", text="two"),
        received("post-a", text="three"),
    )
    b1, b2 = received("post-b", text="one"), received("post-b", text="two")
    await fx.runner.handle_records(records((0, a1), (1, b1), (0, a2), (1, b2), (0, a3)))

    # B was committed with the batch; A's events after A1's retry, in A's order.
    assert await fx.applied() == [b1.id, b2.id, a1.id, a2.id, a3.id]
    # A2 and A3 were not even decided before A1 had succeeded: the fast pass skipped them.
    assert fx.service.log == [a1.id, b1.id, b2.id, a1.id, a2.id, a3.id]
    assert [fx.service.calls[e.id] for e in (a1, a2, a3, b1, b2)] == [2, 1, 1, 1, 1]
    assert await fx.dead_letters() == {}


async def test_after_a_dead_lettered_item_its_key_moves_on_in_order(fx: Fixture) -> None:
    a1, a2 = received("post-a", text="boom"), received("post-a", text="two")
    b1 = received("post-b")
    await fx.runner.handle_records(records((0, a1), (1, b1), (0, a2)))

    assert await fx.applied() == [b1.id, a2.id]
    # A2 was decided only once A1 had had all its attempts (and was dead-lettered).
    assert fx.service.log == [a1.id, b1.id, a1.id, a1.id, a2.id]
    assert list(await fx.dead_letters()) == [a1.id]
    assert (await fx.dead_letters())[a1.id]["dlq_attempts"] == str(MAX_ATTEMPTS)


async def test_replaying_the_batch_changes_nothing(fx: Fixture) -> None:
    good = [received(f"good-{i}") for i in range(6)]
    boom = received("boom-post", text="boom")
    flaky_first, flaky_next = received("post-f", text="flaky"), received("post-f", text="next")
    batch = records(*[(i % 2, e) for i, e in enumerate(good)], (0, boom), (1, flaky_first), (1, flaky_next))
    await fx.runner.handle_records(batch)
    applied, dead, inbox = await fx.applied(), await fx.dead_letters(), await fx.inbox()
    calls = dict(fx.service.calls)
    assert len(applied) == 8
    assert list(dead) == [boom.id]

    await fx.runner.handle_records(batch)  # redelivered: a crash before the offset commit, or a replay

    assert await fx.applied() == applied
    assert await fx.dead_letters() == dead
    assert await fx.inbox() == inbox
    assert fx.service.calls == calls  # no handler was called again


async def test_a_write_phase_failure_still_rolls_back_and_redoes_the_batch_in_chunks(fx: Fixture) -> None:
    good = [received(f"good-{i}") for i in range(20)]
    bad_write = received("bad-write-post", text="bad-write")
    boom = received("boom-post", text="boom")
    batch = records(
        *[(0, e) for e in good[:9]],
        (0, bad_write),
        *[(0, e) for e in good[9:15]],
        (0, boom),
        *[(0, e) for e in good[15:]],
    )

    await fx.runner.handle_records(batch)

    # Every healthy effect once (the failed write's transaction left nothing behind). Each healthy item was
    # decided twice (the failed pass, then its chunk), the culprit's chunk mates three times (that chunk
    # failed too and went one message at a time).
    applied = await fx.applied()
    assert sorted(applied) == sorted(e.id for e in good)
    culprits_chunk = {
        r.offset // CHECKPOINT for r in batch if r.value == bad_write.model_dump_json().encode()
    }
    for record, envelope in zip((r for r in batch if r.key and r.key.startswith(b"good")), good, strict=True):
        assert fx.service.calls[envelope.id] == (3 if record.offset // CHECKPOINT in culprits_chunk else 2)
    dead = await fx.dead_letters()
    assert set(dead) == {bad_write.id, boom.id}
    assert dead[bad_write.id]["dlq_error"].startswith("RuntimeError: the batch write failed")
    assert dead[bad_write.id]["dlq_attempts"] == str(MAX_ATTEMPTS)
    assert dead[boom.id]["dlq_attempts"] == str(MAX_ATTEMPTS)
    assert await fx.count(Inbox) == len(batch)


async def test_an_infrastructure_error_in_the_per_item_phase_retries_the_batch_without_dead_letters(
    fx: Fixture,
) -> None:
    fx.service.infra_failures_left = 1
    posts = [received(f"p{i}") for i in range(4)]
    await fx.runner.handle_records(records(*[(0, e) for e in posts]))
    assert sorted(await fx.applied()) == sorted(e.id for e in posts)
    assert await fx.dead_letters() == {}
    assert set((await fx.inbox()).values()) == {"handled"}


async def test_the_handler_failpoint_fires_inside_the_per_item_phase(
    fx: Fixture, armed_failpoint: str
) -> None:
    good = [received(f"good-{i}") for i in range(5)]
    marked = received("marked-post", text=f"{armed_failpoint}: this handler raises")
    await fx.runner.handle_records(
        records(*[(0, e) for e in good[:2]], (0, marked), *[(0, e) for e in good[2:]])
    )

    assert sorted(await fx.applied()) == sorted(e.id for e in good)
    assert all(fx.service.calls[e.id] == 1 for e in good)
    assert marked.id not in fx.service.calls  # the fail-point raised in each_item, before the step
    dead = await fx.dead_letters()
    assert dead[marked.id]["dlq_error"].startswith("FailPointError")
    assert dead[marked.id]["dlq_attempts"] == str(MAX_ATTEMPTS)


def test_each_item_outside_the_runner_lets_the_exception_propagate() -> None:
    ctx = HandlerContext(
        session=None,  # type: ignore[arg-type]  # not used by each_item
        outbox=OutboxWriter(Outbox),
        topic=Topic.POSTS_RECEIVED,
        partition=0,
        offset=0,
        correlation_id=None,
    )
    service = Service()
    assert each_item([(ctx, received("fine"))], lambda _c, e: e.data.post_id) == [(ctx, "fine")]
    with pytest.raises(ValueError, match="cannot handle"):
        each_item([(ctx, received("p", text="boom"))], service.decide)


async def test_a_batch_handler_without_each_item_still_fails_whole_on_the_failpoint(
    fx: Fixture, armed_failpoint: str
) -> None:
    written: list[str] = []

    async def plain(batch: list[tuple[HandlerContext, Envelope[Any]]]) -> None:
        for ctx, envelope in batch:
            written.append(envelope.id)
            ctx.session.add(Applied(event_id=envelope.id, post_id=envelope.data.post_id))

    fx.runner.router = EventRouter()
    fx.runner.router.add_batch(PostReceivedV1, plain)
    good = [received(f"good-{i}") for i in range(10)]
    marked = received("marked-post", text=f"{armed_failpoint}: this handler raises")
    await fx.runner.handle_records(
        records(*[(0, e) for e in good[:3]], (0, marked), *[(0, e) for e in good[3:]])
    )

    # The fail-point failed the handler's whole call: rolled back, redone in chunks, the culprit alone.
    assert sorted(await fx.applied()) == sorted(e.id for e in good)
    assert written.count(good[9].id) == 2  # not in the culprit's chunk: the failed pass, then its chunk
    assert (await fx.dead_letters())[marked.id]["dlq_attempts"] == str(MAX_ATTEMPTS)


async def test_a_redelivered_copy_in_the_same_batch_is_applied_once(fx: Fixture) -> None:
    # The outbox relay may publish an event twice (a crash after the send): both copies in one fetch.
    a1, a2, b1 = received("post-a", text="flaky"), received("post-a", text="two"), received("post-b")
    await fx.runner.handle_records(records((0, a2), (0, a1), (0, a1), (1, b1), (0, a2)))

    assert await fx.applied() == [a2.id, b1.id, a1.id]
    assert [fx.service.calls[e.id] for e in (a1, a2, b1)] == [2, 1, 1]
    assert await fx.dead_letters() == {}
