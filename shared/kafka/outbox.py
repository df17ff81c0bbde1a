"""Transactional outbox: events are rows written in the state's own transaction; a relay publishes them.

No event is published that was not committed (the row only exists after commit) and none committed is lost
(the row is deleted only after the broker acknowledged it with acks=all). A crash between the two publishes
the row again: consumers absorb it through their inbox. On PostgreSQL a transaction-scoped advisory lock keeps
one relay active per service database, so events leave in commit order even with several replicas.

The writer keeps a transaction's rows in its session and inserts them as it commits, as one Core executemany
in the order they were added (so their ids, hence the relay's publish order, follow the order of emit):
building an ORM object per row and flushing it through the unit of work cost more than the events. Rows
added in a savepoint that rolls back are dropped with it. The rows are not visible to a query in their own
transaction before the commit (nothing reads them there).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Insert, Row, Table, delete, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from shared import failpoints
from shared.contracts.envelope import Envelope, EventModel
from shared.db.base import within_transaction
from shared.db.engine import Database
from shared.kafka.tables import OutboxMixin
from shared.logging import current_correlation_id, get_logger
from shared.observability import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, OUTBOX_PUBLISHED

log = get_logger(__name__)

CORRELATION_HEADER = "correlation_id"
DIRTY_FLAG = "switchboard.outbox_dirty"
#: session.info key of the rows waiting for the commit: (table, transaction, row), in the order added.
PENDING = "switchboard.insert_at_commit"

_Pending = tuple[Table, SessionTransaction | None, dict[str, Any]]
_INSERTS: dict[Table, Insert] = {}


def insert_at_commit(session: AsyncSession | Session, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` when the session's transaction commits (dropped if the transaction, or
    the savepoint it was added in, rolls back). At the commit each table's rows go in as one Core
    executemany, in the order they were added. For rows written in bulk on a hot path that nothing reads
    back in their own transaction (the outbox; routing's decisions): no ORM object, no unit of work."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    pending: list[_Pending] | None = sync.info.get(PENDING)
    if pending is None:
        pending = sync.info[PENDING] = []
    pending.append((table, sync.get_nested_transaction() or sync.get_transaction(), row))


class OutboxWriter:
    """Adds outbox rows to the caller's transaction; never commits.

    Rows wait in the session until its transaction commits, then go in as one executemany per outbox table
    (``insert_at_commit``), in the order they were added."""

    def __init__(self, model: type[OutboxMixin]) -> None:
        self.model = model
        self.table: Table = model.__table__  # type: ignore[attr-defined]

    def add(
        self,
        session: AsyncSession,
        envelope: Envelope[Any],
        *,
        correlation_id: str | None = None,
    ) -> None:
        data: EventModel = envelope.data
        headers = {"ce_type": envelope.type}
        cid = correlation_id or current_correlation_id()
        if cid:
            headers[CORRELATION_HEADER] = cid
        self.add_raw(
            session,
            event_id=envelope.id,
            topic=data.topic,
            key=envelope.subject,
            value=envelope.model_dump_json().encode(),
            headers=headers,
        )

    def add_raw(
        self,
        session: AsyncSession,
        *,
        event_id: str,
        topic: str,
        key: str,
        value: bytes,
        headers: dict[str, str],
    ) -> None:
        row = {
            "event_id": event_id,
            "topic": topic,
            "key": key,
            "value": value,
            "headers": headers,
            "created_at": datetime.now(UTC),
        }
        insert_at_commit(session, self.table, row)
        session.info[DIRTY_FLAG] = True


def _insert_pending(session: Session) -> None:
    """Insert the transaction's waiting rows: one executemany per table. Registered first among the commit
    hooks, so that the audit hook, which locks its chain, runs after it and holds that lock no longer."""
    if session.in_nested_transaction():
        return  # a savepoint committing: its rows wait for the outer commit
    pending: list[_Pending] | None = session.info.pop(PENDING, None)
    if not pending:
        return
    by_table: dict[Table, list[dict[str, Any]]] = {}
    for table, _, row in pending:
        rows = by_table.get(table)
        if rows is None:
            rows = by_table[table] = []
        rows.append(row)
    conn = session.connection()
    for table, rows in by_table.items():
        statement = _INSERTS.get(table)
        if statement is None:
            statement = _INSERTS[table] = insert(table)
        conn.execute(statement, rows)


def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    """Rows added in a transaction or savepoint that rolled back are forgotten with it."""
    pending: list[_Pending] | None = session.info.get(PENDING)
    if not pending:
        return
    if previous_transaction.parent is None:
        session.info.pop(PENDING, None)
        return
    session.info[PENDING] = [p for p in pending if not within_transaction(p[1], previous_transaction)]


def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    """A session's outermost transaction ended (committed, rolled back or closed): nothing waits any more,
    so rows of a session closed without a commit never reach a later transaction of that session."""
    if transaction.parent is None:
        session.info.pop(PENDING, None)


event.listen(Session, "before_commit", _insert_pending, insert=True)
event.listen(Session, "after_soft_rollback", _forget_rolled_back)
event.listen(Session, "after_transaction_end", _forget_at_end)


class OutboxRelay:
    """Background task publishing committed outbox rows in id order, in batches."""

    def __init__(
        self,
        *,
        db: Database,
        model: type[OutboxMixin],
        producer: AIOKafkaProducer,
        lock_name: str,
        batch_size: int = 500,
        poll_interval: float = 0.5,
    ) -> None:
        self.db = db
        self.model = model
        self.producer = producer
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lock_key = zlib.crc32(f"switchboard.outbox.{lock_name}".encode())
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.healthy = True
        db.on_commit(self._after_commit)

    def _after_commit(self, info: dict[str, Any]) -> None:
        if info.pop(DIRTY_FLAG, False):
            self._wake.set()

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, grace: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._task, grace)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            # Cleared before the pass, not after it: a commit while this pass publishes sets it again, and
            # the wait below returns at once instead of leaving that commit's rows for the next poll.
            self._wake.clear()
            try:
                published = await self.publish_batch()
                self.healthy = True
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.healthy = False
                log.warning("outbox_publish_failed", error_type=type(exc).__name__, error=str(exc)[:300])
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published >= self.batch_size:
                continue  # more waiting: no sleep
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def publish_batch(self) -> int:
        """Publish up to ``batch_size`` rows; returns how many were published."""
        if self.db.is_sqlite:
            # SQLite has one connection: never hold it while waiting for the broker, or a broker outage
            # would stall every request. One process relays per SQLite file, so order holds anyway.
            async with self.db.transaction() as session:
                rows = await self._fetch(session)
            if rows:
                await self._send(rows)
                async with self.db.transaction() as session:
                    await self._delete(session, rows)
            return len(rows)
        async with self.db.transaction() as session:
            # One relay at a time per database, so rows leave in commit order across replicas.
            if not await session.scalar(select(func.pg_try_advisory_xact_lock(self.lock_key))):
                return 0
            rows = await self._fetch(session)
            if rows:
                await self._send(rows)
                await self._delete(session, rows)
            return len(rows)

    async def _fetch(self, session: AsyncSession) -> list[Row[Any]]:
        # The table's columns, not the mapped class's: a Core select skips the ORM's result machinery.
        t: Table = self.model.__table__  # type: ignore[attr-defined]
        result = await session.execute(
            select(t.c.id, t.c.event_id, t.c.topic, t.c.key, t.c.value, t.c.headers, t.c.created_at)
            .order_by(t.c.id)
            .limit(self.batch_size)
        )
        rows: list[Row[Any]] = [*result]
        OUTBOX_BACKLOG.set(len(rows))
        OUTBOX_OLDEST_AGE.set((datetime.now(UTC) - rows[0].created_at).total_seconds() if rows else 0)
        return rows

    async def _send(self, rows: list[Row[Any]]) -> None:
        futures = []
        for row in rows:
            headers = [(k, str(v).encode()) for k, v in (row.headers or {}).items()]
            futures.append(
                await self.producer.send(row.topic, value=row.value, key=row.key.encode(), headers=headers)
            )
        await asyncio.gather(*futures)
        failpoints.hit("outbox.after_send")
        for row in rows:
            OUTBOX_PUBLISHED.labels(row.topic).inc()

    async def _delete(self, session: AsyncSession, rows: list[Row[Any]]) -> None:
        # By id AND event id: SQLite reuses the ids of deleted rows once the table is empty, so a relay that
        # deleted by id alone after a slow send could delete another process's new, unpublished rows (fault
        # test F5 lost events that way with two routing processes on one SQLite file).
        t: Table = self.model.__table__  # type: ignore[attr-defined]
        await session.execute(
            delete(t).where(
                t.c.id.in_([row.id for row in rows]), t.c.event_id.in_([row.event_id for row in rows])
            )
        )
