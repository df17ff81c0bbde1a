"""Inbox-guarded consumer runner: exactly-once effects on top of at-least-once delivery.

For each fetched batch, each topic's messages (all its fetched partitions, each partition's in order) are
handled in ONE database transaction: the handlers run (a batch handler once for a run of consecutive events
it takes), then one multi-row insert adds an inbox row (consumer group, event id) per message; the handlers
write their effects and any outbox rows into the same session.

Partial batch failure (like AWS Lambda's ``ReportBatchItemFailures``, keeping each key's order): a batch
handler runs its per-item phase (parse, screen, decide) through ``each_item``, which catches an item's
exception, reports the item failed and skips every later item of the same Kafka key (the post id); the
handler writes the effects of the other items only. The runner commits those with their inbox rows, then
handles the failed item and its key's skipped items in the careful pass, one at a time and in order: the
failed item retried (``handler_max_attempts`` attempts in all, each in a fresh transaction, a short backoff
between them) and then dead-lettered, the items after it next. So a poison message costs its batch nothing
but its own retries, and a post's events are never applied out of order.

Any other handler failure (an exception outside ``each_item``, such as the batch write itself, or a plain
per-event handler raising) or an inbox row conflict rolls the whole transaction back, and the batch is redone
in chunks of ``CHECKPOINT`` messages, each in its own transaction: the fast path again for a chunk, one
message at a time (each attempt with its inbox row in a fresh transaction) for the chunk that fails.
After all of it is committed, the offsets of every partition in the batch are committed (``offset + 1``),
once per batch. A redelivered message finds its inbox row and is skipped, so replaying a topic from the
beginning changes nothing.

Failures:
- a message that cannot be decoded is dead-lettered at once (retrying cannot help); one whose handler still
  raises after ``handler_max_attempts`` is dead-lettered after its retries. Dead letters go to the
  dead-letter topic ``<topic>.dlq.<group>`` through the outbox (same transaction), with the error in
  headers, and the partition moves on;
- the Kafka client itself failing (not a Kafka error: aiokafka met an AssertionError after rebalance churn in
  fault test F5) is logged, reported not ready, and a fresh client joins the group again;
- infrastructure errors (database or network down), anywhere, are not the message's fault: the whole batch
  is retried with backoff (up to 10 s), nothing is dead-lettered and no offset is committed until it succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from shared import failpoints
from shared.config import KafkaSettings
from shared.contracts.envelope import Envelope, EventModel, UnknownEventType, decode_envelope
from shared.contracts.topics import dead_letter_topic
from shared.db.engine import Database
from shared.kafka.outbox import CORRELATION_HEADER, OutboxWriter
from shared.kafka.tables import InboxMixin
from shared.logging import get_logger, log_context
from shared.observability import (
    CONSUMER_LAG,
    DEAD_LETTERS,
    EVENTS_CONSUMED,
    HANDLER_FAILURES,
    HANDLER_SECONDS,
)

log = get_logger(__name__)

#: Header of a message re-published from a dead-letter topic by ops (value: the replay's audit id).
DLQ_REPLAY_HEADER = "dlq_replay_id"

E = TypeVar("E", bound=EventModel)


@dataclass
class HandlerContext:
    """What a handler may use: the transaction's session and the outbox. It must not commit."""

    session: AsyncSession
    outbox: OutboxWriter
    topic: str
    partition: int
    offset: int
    correlation_id: str | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Set by the runner's fast pass: where ``each_item`` reports an item's failure. None elsewhere (the
    #: careful pass, direct calls): ``each_item`` then lets the exception propagate.
    _report: _BatchReport | None = field(default=None, repr=False, compare=False)

    def emit(self, envelope: Envelope[Any]) -> None:
        self.outbox.add(self.session, envelope, correlation_id=self.correlation_id)


Handler = Callable[[HandlerContext, Envelope[Any]], Awaitable[None]]
#: A handler of several consecutive events of one type from one partition, in one transaction: each event
#: comes with its own context (offset, correlation id; ``emit`` through the context of the event it is about).
BatchHandler = Callable[[list[tuple[HandlerContext, Envelope[Any]]]], Awaitable[None]]


class EventRouter:
    """Maps event types to handler functions (one per type), registered with a decorator.

    A batch handler (``on_batch``) receives every consecutive event it handles in a fetched batch at once
    (one handler may be registered for several types), so it can read and write in bulk (one query for all
    the events instead of one per event). It should run its per-item phase through ``each_item``, so that
    a failing event is reported and retried on its own while the rest of the batch commits. When the batch
    handler itself raises, the runner redoes the batch in chunks, and the chunk that fails one event at a
    time: the batch handler is then called with a single event, so a poison event is still retried and
    dead-lettered on its own.
    """

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.models: dict[str, type[EventModel]] = {}

    def add(self, model: type[EventModel], handler: Handler) -> None:
        if model.event_type in self.handlers:
            raise ValueError(f"a handler for {model.event_type} is already registered")
        self.handlers[model.event_type] = handler
        self.models[model.event_type] = model

    def add_batch(self, model: type[EventModel], handler: BatchHandler) -> None:
        async def one(ctx: HandlerContext, envelope: Envelope[Any]) -> None:
            await handler([(ctx, envelope)])

        self.add(model, one)
        self.batch_handlers[model.event_type] = handler

    def on(self, model: type[E]) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.add(model, fn)
            return fn

        return register

    def on_batch(self, model: type[E]) -> Callable[[BatchHandler], BatchHandler]:
        def register(fn: BatchHandler) -> BatchHandler:
            self.add_batch(model, fn)
            return fn

        return register

    @property
    def topics(self) -> list[str]:
        return sorted({m.topic for m in self.models.values()})


def is_infrastructure_error(exc: BaseException) -> bool:
    """Errors that say the database or network is unwell, not that the message is bad."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError | OSError | TimeoutError
    )


R = TypeVar("R")


@dataclass
class _BatchReport:
    """What ``each_item`` learnt in one fast-pass transaction (shared by every batch handler call in it)."""

    #: event id -> item, for every event given to a batch handler in this transaction
    items: dict[str, _Item] = field(default_factory=dict)
    #: event id -> error of an item whose per-item phase raised
    failed: dict[str, str] = field(default_factory=dict)
    #: keys of the failed items: a later item of one of them is skipped (it is handled after the failed one)
    failed_keys: set[bytes | str] = field(default_factory=set)
    #: event ids whose per-item phase succeeded (the handler may have written their effects)
    succeeded: set[str] = field(default_factory=set)
    #: how many times ``each_item`` was called with this report
    calls: int = 0


def each_item(
    batch: Sequence[tuple[HandlerContext, Envelope[Any]]],
    step: Callable[[HandlerContext, Envelope[Any]], R],
) -> list[tuple[HandlerContext, R]]:
    """A batch handler's per-item phase, with partial batch failure (like AWS Lambda's
    ``ReportBatchItemFailures``, but keeping each key's order).

    ``step`` runs for each event of ``batch``, in order: the pure work of one item (parse, screen, decide),
    NOT its writes. Returns ``(context, result)`` of the items that succeeded, in order; the handler then
    writes (and emits) the effects of those items only. When ``step`` raises for an item, the item is reported
    failed, and every LATER item of the same Kafka key (the post id) is skipped, so a post's events are never
    applied out of order. The runner commits the successful items with their inbox rows, then retries the
    failed item in a transaction of its own (``KAFKA_HANDLER_MAX_ATTEMPTS`` attempts, then the dead-letter
    topic) and handles the skipped items after it, in order.

    Rules: give ``batch`` in the order received, call ``each_item`` once per handler call, and do not write in
    ``step``. Infrastructure and database errors are not an item's fault: they propagate and the whole batch
    is rolled back (and retried or redone in chunks), as does any exception outside ``each_item``. Outside the
    runner's fast pass (one event at a time in the careful pass, or a direct call) ``step``'s exception
    propagates. The fail-point ``consumer.handler_raises`` fires here, as if ``step`` raised.
    """
    report = batch[0][0]._report if batch else None
    if report is None:
        return [(ctx, step(ctx, envelope)) for ctx, envelope in batch]
    report.calls += 1
    ok: list[tuple[HandlerContext, R]] = []
    for ctx, envelope in batch:
        item = report.items[envelope.id]
        key = item.order_key
        if key in report.failed_keys:
            continue  # an earlier item of this key failed: this one is handled after it
        try:
            failpoints.raise_if_marked("consumer.handler_raises", item.record.value)
            result = step(ctx, envelope)
        except Exception as exc:
            if is_infrastructure_error(exc) or isinstance(exc, sa_exc.SQLAlchemyError):
                raise
            report.failed[item.event_id] = f"{type(exc).__name__}: {str(exc)[:500]}"
            report.failed_keys.add(key)
            continue
        report.succeeded.add(item.event_id)
        ok.append((ctx, result))
    return ok


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, group: str, consumer: AIOKafkaConsumer, *, replay: bool) -> None:
        self.group = group
        self.consumer = consumer
        self.replay = replay

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Batches are handled and committed before the next poll, so nothing is in flight here.
        log.info("partitions_revoked", group=self.group, partitions=len(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info(
            "partitions_assigned",
            group=self.group,
            partitions=len(assigned),
            assigned=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned),
            replay=self.replay,
        )
        if self.replay and assigned:
            # Replay mode: read everything again; the inbox makes it change nothing.
            await self.consumer.seek_to_beginning(*assigned)


class _NeedsCarefulPass(Exception):
    """The fast pass met a message it cannot take in bulk: (event id, error) of a failed handler, or None."""

    def __init__(self, failure: tuple[str, str] | None) -> None:
        super().__init__("redo the batch one message at a time")
        self.failure = failure


#: After a batch fails in the fast path, it is redone in chunks of this many messages, each in its own
#: transaction: a chunk without the culprit takes the fast path again, the culprit's chunk goes one message
#: at a time. A failing handler so costs one extra pass over its batch plus one chunk, not the whole batch
#: one message at a time.
CHECKPOINT = 8


@dataclass
class _Item:
    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope[EventModel] | None
    error: str | None
    event_id: str
    correlation_id: str | None

    @property
    def order_key(self) -> bytes | str:
        """The Kafka key (the post id): items of one key are applied in order. Without a key, the event."""
        return self.record.key if self.record.key is not None else self.event_id


@dataclass
class _FastResult:
    """A committed fast pass: its outcome counts, and what the careful pass must still handle."""

    outcomes: dict[str, int]
    #: failed items and the later items of their keys, in batch order
    deferred: list[_Item]
    #: event id -> error of a failed first attempt
    errors: dict[str, str]


class ConsumerRunner:
    def __init__(
        self,
        *,
        group_id: str,
        router: EventRouter,
        db: Database,
        inbox_model: type[InboxMixin],
        outbox: OutboxWriter,
        settings: KafkaSettings,
        client_id: str,
        replay_from_beginning: bool = False,
    ) -> None:
        self.group_id = group_id
        self.replay_from_beginning = replay_from_beginning
        self.router = router
        self.db = db
        self.inbox_model = inbox_model
        self.outbox = outbox
        self.settings = settings
        self.client_id = client_id
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.healthy = True

    @property
    def dead_letter_topics(self) -> list[str]:
        return [dead_letter_topic(t, self.group_id) for t in self.router.topics]

    async def start(self) -> None:
        await self._start_consumer()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group_id}")

    async def _start_consumer(self) -> None:
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.client_id_prefix}.{self.client_id}",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_poll_records=s.max_poll_records,
            max_poll_interval_ms=s.max_poll_interval_ms,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            request_timeout_ms=s.request_timeout_ms,
        )
        self.consumer.subscribe(
            self.router.topics,
            listener=_Rebalance(self.group_id, self.consumer, replay=self.replay_from_beginning),
        )
        await self.consumer.start()

    async def _restart_consumer(self) -> None:
        """A fresh client that joins the group again and resumes from the committed offsets (the inbox
        absorbs what the old one handled without committing)."""
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()
        await self._start_consumer()

    async def stop(self, grace: float = 8.0) -> None:
        """Finish the batch in hand, commit it, leave the group."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            except Exception as exc:  # the loop died; nothing was committed for its last batch
                log.warning("consumer_stopped_with_error", group=self.group_id, error_type=type(exc).__name__)
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()

    def _set_fetch_wait(self, ms: int) -> None:
        """The embedded broker holds every fetch for the whole wait, so an idle consumer with a 10 ms wait
        sends 100 fetches a second (~4% of a core). aiokafka has no public setter: its fetcher's field."""
        fetcher = getattr(self.consumer, "_fetcher", None)
        if fetcher is not None and hasattr(fetcher, "_fetch_max_wait_ms"):
            fetcher._fetch_max_wait_ms = ms

    async def _run(self) -> None:
        empty_polls = [0]
        while not self._stopping:
            try:
                await self._poll_once(empty_polls)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    raise
                # Not a Kafka error: the client itself broke (fault test F5 met an AssertionError inside
                # aiokafka after rebalance churn, which used to end consumption silently). Say so, report
                # not ready meanwhile, and carry on with a fresh client.
                self.healthy = False
                log.error(
                    "consumer_client_failed",
                    group=self.group_id,
                    error_type=type(exc).__name__,
                    error=str(exc)[:300],
                )
                await asyncio.sleep(1.0)
                try:
                    await self._restart_consumer()
                    self.healthy = True
                except Exception as restart_exc:
                    log.error(
                        "consumer_restart_failed", group=self.group_id, error_type=type(restart_exc).__name__
                    )

    async def _poll_once(self, empty_polls: list[int]) -> None:
        """One fetch, its batch handled and its offsets committed. ``empty_polls`` counts fetches in a row
        that brought nothing (an idle consumer then long-polls)."""
        assert self.consumer is not None  # noqa: S101
        try:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.max_poll_records)
        except KafkaError as exc:
            self.healthy = False
            log.warning("consumer_fetch_failed", group=self.group_id, error_type=type(exc).__name__)
            await asyncio.sleep(1.0)
            return
        if not batches:
            empty_polls[0] += 1
            if empty_polls[0] == 5:  # about a second without a message
                self._set_fetch_wait(self.settings.idle_fetch_max_wait_ms)
            return
        if empty_polls[0] >= 5:
            self._set_fetch_wait(self.settings.fetch_max_wait_ms)
        empty_polls[0] = 0
        offsets: dict[TopicPartition, int] = {}
        fetched: list[ConsumerRecord[bytes, bytes]] = []
        for tp, records in batches.items():
            fetched.extend(records)
            offsets[tp] = records[-1].offset + 1
        await self.handle_records(fetched)
        failpoints.hit("consumer.after_db_commit")
        try:
            await self.consumer.commit(offsets)
            self.healthy = True
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Lost the partitions in a rebalance: the new owner re-reads and its inbox absorbs it.
            log.warning("offset_commit_failed", group=self.group_id, error_type=type(exc).__name__)
        self._sample_lag(offsets)

    def _sample_lag(self, offsets: dict[TopicPartition, int]) -> None:
        """Lag = partition end (high watermark from the last fetch) - next offset this group will read."""
        if self.consumer is None:
            return
        for tp, next_offset in offsets.items():
            end = self.consumer.highwater(tp)
            if end is not None:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition), self.group_id).set(max(0, end - next_offset))

    async def handle_records(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Handle fetched records (each partition's in order) and return once their effects and inbox rows
        are committed to the database; committing the offsets is the caller's part."""
        # One transaction per topic for all its partitions in this fetch (each partition's messages stay
        # in order): at moderate rates a fetch brings a few messages per partition, and a transaction,
        # an inbox lookup and a batch handler call per partition cost more than the messages themselves.
        by_topic: dict[str, list[ConsumerRecord[bytes, bytes]]] = {}
        for record in records:
            by_topic.setdefault(record.topic, []).append(record)
        for topic, topic_records in by_topic.items():
            await self._handle_with_retry(topic, topic_records)

    async def _handle_with_retry(self, topic: str, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        items = [self._decode(r) for r in records]
        backoff = 0.2
        while True:
            started = time.perf_counter()
            try:
                await self._handle_batch(topic, items)
                HANDLER_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)
                self.healthy = True
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Infrastructure trouble or a lost race on the inbox: retry the whole batch, commit nothing.
                self.healthy = False
                log.warning(
                    "batch_failed_will_retry",
                    group=self.group_id,
                    topic=topic,
                    partitions=sorted({r.partition for r in records}),
                    error_type=type(exc).__name__,
                    error=str(exc)[:300],
                )
                if self._stopping:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> _Item:
        headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
        fallback_id = f"{record.topic}:{record.partition}:{record.offset}"
        cid = headers.get(CORRELATION_HEADER)
        try:
            if record.value is None:
                raise ValueError("empty message value")
            env = decode_envelope(record.value, self.router.models)
            return _Item(record, env, None, env.id, cid)
        except (ValidationError, UnknownEventType, ValueError) as exc:
            return _Item(record, None, f"{type(exc).__name__}: {str(exc)[:500]}", fallback_id, cid)

    async def _handle_batch(self, topic: str, items: list[_Item]) -> None:
        """Fast path first: the whole batch in one transaction, no savepoints, one inbox insert; the items a
        batch handler reported failed (``each_item``) and the later items of their keys are left out of it
        and handled after its commit by the careful pass. If a handler raises or an inbox row conflicts,
        redo the batch in chunks of ``CHECKPOINT`` messages, each in its own transaction (committed in order;
        the inbox makes a chunk seen before a no-op): the fast path again for a chunk, one message at a time
        (a fresh transaction per attempt) for the chunk whose handler fails, so that only the culprit is
        retried and dead-lettered."""
        outcomes: dict[str, int] = {}
        try:
            first = await self._handle_batch_fast(items)
        except (_NeedsCarefulPass, sa_exc.IntegrityError) as failed:
            # A handler that failed on a known event has had its first attempt: its chunk goes straight to
            # the careful pass, which counts that attempt.
            known = failed.failure if isinstance(failed, _NeedsCarefulPass) else None
            for start in range(0, len(items), CHECKPOINT):
                chunk = items[start : start + CHECKPOINT]
                try:
                    if known is not None and any(i.event_id == known[0] for i in chunk):
                        raise _NeedsCarefulPass(known)
                    done = await self._handle_batch_fast(chunk)
                except _NeedsCarefulPass as careful:
                    errors = dict([careful.failure]) if careful.failure else {}
                    _add(outcomes, await self._handle_batch_careful(chunk, errors=errors))
                except sa_exc.IntegrityError:
                    _add(outcomes, await self._handle_batch_careful(chunk, errors={}))
                else:
                    _add(outcomes, done.outcomes)
                    _add(outcomes, await self._handle_batch_careful(done.deferred, errors=done.errors))
        else:
            _add(outcomes, first.outcomes)
            _add(outcomes, await self._handle_batch_careful(first.deferred, errors=first.errors))
        for outcome, count in outcomes.items():
            if count:
                EVENTS_CONSUMED.labels(topic, self.group_id, outcome).inc(count)

    async def _seen(self, session: AsyncSession, items: list[_Item]) -> set[str]:
        inbox = self.inbox_model
        result = await session.execute(
            select(inbox.event_id, inbox.outcome).where(
                inbox.consumer_group == self.group_id,
                inbox.event_id.in_([i.event_id for i in items]),
            )
        )
        outcomes: dict[str, str] = dict(result.all())
        # An ops replay of a dead letter (metrics' POST /v1/ops/dead-letters/{id}/replay) must be handled
        # again, not skipped as a duplicate: forget its dead_lettered inbox row. Nothing else is retried.
        retry = [
            i.event_id
            for i in items
            if outcomes.get(i.event_id) == "dead_lettered"
            and any(k == DLQ_REPLAY_HEADER for k, _ in (i.record.headers or ()))
        ]
        if retry:
            await session.execute(
                delete(inbox).where(inbox.consumer_group == self.group_id, inbox.event_id.in_(retry))
            )
        return set(outcomes) - set(retry)

    def _context(
        self, session: AsyncSession, item: _Item, report: _BatchReport | None = None
    ) -> HandlerContext:
        return HandlerContext(
            session=session,
            outbox=self.outbox,
            topic=item.record.topic,
            partition=item.record.partition,
            offset=item.record.offset,
            correlation_id=item.correlation_id,
            _report=report,
        )

    async def _handle_batch_fast(self, items: list[_Item]) -> _FastResult:
        """The batch in one transaction. Items a batch handler reported failed, and every later item of
        their keys, are left out (no effect, no inbox row) and returned for the careful pass."""
        outcomes = {"handled": 0, "duplicate": 0, "dead_lettered": 0}
        report = _BatchReport()
        position: dict[str, int] = {}  # event id -> its first position (a batch may hold a redelivery)
        for n, item in enumerate(items):
            position.setdefault(item.event_id, n)
        #: key -> position of its first failed item: the key's later items wait for the careful pass
        failed_at: dict[bytes | str, int] = {}

        def waits(item: _Item) -> bool:
            first_failure = failed_at.get(item.order_key)
            return first_failure is not None and position[item.event_id] > first_failure

        async with self.db.transaction() as session:
            seen = await self._seen(session, items)
            handled: list[_Item] = []
            dead: list[_Item] = []  # undecodable: retrying cannot help, dead-lettered in place
            run: list[_Item] = []  # consecutive events for one batch handler, not yet handled
            later: set[str] = set()  # single-handler events not handled: their key failed before them

            async def flush_run() -> None:
                if not run:
                    return
                envelope = run[0].envelope
                assert envelope is not None  # noqa: S101 - only decoded items join a run
                for i in run:
                    report.items[i.event_id] = i
                calls = report.calls
                try:
                    await self.router.batch_handlers[envelope.type](
                        [
                            (self._context(session, i, report), i.envelope)
                            for i in run
                            if i.envelope is not None
                        ]
                    )
                    if report.calls == calls:
                        # A batch handler without ``each_item``: the fail-point fails its whole call.
                        for i in run:
                            failpoints.raise_if_marked("consumer.handler_raises", i.record.value)
                except Exception as exc:
                    if is_infrastructure_error(exc):
                        raise
                    # Which event failed is unknown: the careful pass finds it, one event at a time.
                    raise _NeedsCarefulPass(None) from exc
                for i in run:
                    error = report.failed.get(i.event_id)
                    if error is None:
                        handled.append(i)
                        continue
                    failed_at.setdefault(i.order_key, position[i.event_id])
                    HANDLER_FAILURES.labels(i.record.topic, self.group_id).inc()
                    with self._log_context(i):
                        log.warning("handler_failed", attempt=1, error_type=error.split(":", 1)[0])
                run.clear()

            for item in items:
                if item.event_id in seen:
                    outcomes["duplicate"] += 1
                    continue
                seen.add(item.event_id)
                if item.envelope is None:
                    dead.append(item)
                    continue
                batch_handler = self.router.batch_handlers.get(item.envelope.type)
                if batch_handler is not None:
                    # A run is the consecutive events one batch handler takes (it may take several types).
                    if (
                        run
                        and run[0].envelope is not None
                        and (self.router.batch_handlers[run[0].envelope.type] is not batch_handler)
                    ):
                        await flush_run()
                    run.append(item)
                    continue
                await flush_run()
                if waits(item):
                    later.add(item.event_id)
                    continue
                with self._log_context(item):
                    try:
                        failpoints.raise_if_marked("consumer.handler_raises", item.record.value)
                        await self.router.handlers[item.envelope.type](
                            self._context(session, item), item.envelope
                        )
                    except Exception as exc:
                        if is_infrastructure_error(exc):
                            raise
                        raise _NeedsCarefulPass(
                            (item.event_id, f"{type(exc).__name__}: {str(exc)[:500]}")
                        ) from exc
                    log.debug("event_handled", outcome="handled")
                handled.append(item)
            await flush_run()

            deferred_ids = set(report.failed) | later
            deferred_ids.update(i.event_id for i in (*handled, *dead) if waits(i))
            if deferred_ids & report.succeeded:
                # The handler was given (or iterated) its events out of order, so it may have applied an
                # event after its key's failed one: take the safe path (rollback, chunked redo).
                log.error("batch_handler_out_of_order", group=self.group_id)
                raise _NeedsCarefulPass(None)
            handled = [i for i in handled if i.event_id not in deferred_ids]
            dead = [i for i in dead if i.event_id not in deferred_ids]
            for i in dead:
                with self._log_context(i):
                    self._dead_letter(session, i, i.error or "undecodable message", 0)
            if handled or dead:
                now = datetime.now(UTC)
                await session.execute(
                    insert(self.inbox_model.__table__),  # type: ignore[attr-defined]  # Core executemany
                    [
                        {
                            "consumer_group": self.group_id,
                            "event_id": i.event_id,
                            "topic": i.record.topic,
                            "partition": i.record.partition,
                            "offset": i.record.offset,
                            "outcome": outcome,
                            "processed_at": now,
                        }
                        for group, outcome in ((handled, "handled"), (dead, "dead_lettered"))
                        for i in group
                    ],
                )
            outcomes["handled"] = len(handled)
            outcomes["dead_lettered"] = len(dead)
        deferred = [
            i for n, i in enumerate(items) if i.event_id in deferred_ids and position[i.event_id] == n
        ]
        return _FastResult(outcomes, deferred, dict(report.failed))

    async def _handle_batch_careful(self, items: list[_Item], *, errors: dict[str, str]) -> dict[str, int]:
        """One message at a time, in order, each attempt in a transaction of its own (``_handle_alone``);
        ``errors`` holds the first attempt's error of an event that already failed once."""
        outcomes: dict[str, int] = {}
        for item in items:
            with self._log_context(item):
                outcome = await self._handle_alone(item, prior_error=errors.get(item.event_id))
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                log.debug("event_handled", outcome=outcome)
        return outcomes

    def _log_context(self, item: _Item) -> contextlib.AbstractContextManager[None]:
        return log_context(
            event_id=item.event_id,
            topic=item.record.topic,
            partition=item.record.partition,
            offset=item.record.offset,
            correlation_id=item.correlation_id,
        )

    async def _insert_inbox(self, session: AsyncSession, item: _Item, outcome: str) -> None:
        r = item.record
        await session.execute(
            insert(self.inbox_model).values(
                consumer_group=self.group_id,
                event_id=item.event_id,
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                outcome=outcome,
                processed_at=datetime.now(UTC),
            )
        )

    async def _handle_alone(self, item: _Item, *, prior_error: str | None = None) -> str:
        """Handle one message with its inbox row; a failing handler is retried, each attempt in a fresh
        transaction (so no state of a failed attempt, in the database or in the session, can leak into the
        next), ``handler_max_attempts`` in all, then the message is dead-lettered."""
        error = item.error or prior_error
        # A failure in the fast pass was the first attempt.
        attempts = 1 if prior_error else 0
        if item.envelope is not None:
            handler = self.router.handlers[item.envelope.type]
            if attempts:
                await asyncio.sleep(self.settings.handler_retry_backoff_ms / 1000 * attempts)
            while attempts < self.settings.handler_max_attempts:
                attempts += 1
                try:
                    async with self.db.transaction() as session:
                        if await self._seen(session, [item]):
                            return "duplicate"
                        await self._insert_inbox(session, item, "handled")
                        failpoints.raise_if_marked("consumer.handler_raises", item.record.value)
                        await handler(self._context(session, item), item.envelope)
                    return "handled"
                except sa_exc.IntegrityError as exc:
                    if await self._already_handled(item):
                        return "duplicate"  # another consumer of the group committed it first
                    error = f"IntegrityError: {str(exc.orig)[:500]}"
                except Exception as exc:
                    if is_infrastructure_error(exc):
                        raise
                    error = f"{type(exc).__name__}: {str(exc)[:500]}"
                HANDLER_FAILURES.labels(item.record.topic, self.group_id).inc()
                log.warning("handler_failed", attempt=attempts, error_type=error.split(":", 1)[0])
                if attempts < self.settings.handler_max_attempts:
                    await asyncio.sleep(self.settings.handler_retry_backoff_ms / 1000 * attempts)
        async with self.db.transaction() as session:
            if await self._seen(session, [item]):
                return "duplicate"
            self._dead_letter(session, item, error or "unknown error", attempts)
            await self._insert_inbox(session, item, "dead_lettered")
        return "dead_lettered"

    async def _already_handled(self, item: _Item) -> bool:
        inbox = self.inbox_model
        async with self.db.transaction() as session:
            found = await session.scalar(
                select(inbox.event_id).where(
                    inbox.consumer_group == self.group_id, inbox.event_id == item.event_id
                )
            )
        return found is not None

    def _dead_letter(self, session: AsyncSession, item: _Item, error: str, attempts: int) -> None:
        r = item.record
        headers = {k: v.decode(errors="replace") for k, v in (r.headers or ())}
        headers.update(
            {
                "dlq_error": error[:1000],
                "dlq_original_topic": r.topic,
                "dlq_original_partition": str(r.partition),
                "dlq_original_offset": str(r.offset),
                "dlq_consumer_group": self.group_id,
                "dlq_attempts": str(attempts),
                "dlq_failed_at": datetime.now(UTC).isoformat(),
            }
        )
        self.outbox.add_raw(
            session,
            event_id=item.event_id,
            topic=dead_letter_topic(r.topic, self.group_id),
            key=(r.key or b"").decode(errors="replace") or item.event_id,
            value=r.value or b"",
            headers=headers,
        )
        DEAD_LETTERS.labels(r.topic, self.group_id).inc()
        log.error("message_dead_lettered", attempts=attempts, error_type=error.split(":", 1)[0])


def _add(total: dict[str, int], counts: dict[str, int]) -> None:
    for outcome, count in counts.items():
        total[outcome] = total.get(outcome, 0) + count
