"""Engine and session factory for PostgreSQL (asyncpg) and SQLite (aiosqlite, WAL).

SQLite has one writer: one pooled connection serialises writers in-process instead of making them spin on the
file lock (measured: p99 743 ms with the default pool against 25 ms with one connection). Its driver's own
transaction handling is replaced by explicit BEGIN so that SAVEPOINTs work.

The writer's SQLite calls run inline on the event loop (``InlineSqliteConnection``), not on aiosqlite's
worker thread: the hop to that thread and back cost ~80 us of CPU per call against ~9 us for the call
itself, and SQLAlchemy makes four or five calls per statement (cursor, execute, fetch, close), so it was
most of every service's CPU (measured: 1.17 ms CPU for a one-statement transaction, 2.75 ms for five).
Reads for HTTP requests keep the thread (the read-only engine): a long dashboard query must not stall the
event loop, while a writer's statements are short and already queue behind the single writer.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session


class InlineSqliteConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run inline on the event loop instead of on its worker thread.

    aiosqlite queues every call (cursor, execute, fetch, close, commit) to its thread and wakes the event
    loop with the result: about 80 us of CPU per call for a call that takes ~9 us. The writer's statements
    are short (indexed reads and inserts of one consumer batch or one group commit, WAL with
    ``synchronous=NORMAL``: a commit does not wait for the disk), so running them inline costs the loop
    less time than the hop did. The thread still opens and closes the connection (and serves
    SQLAlchemy's isolation-level setter, which queues to it directly); it sleeps otherwise. The cost: while
    another process holds the file's write lock, this process's event loop waits for it (up to the busy
    timeout) instead of only its writer; one process per SQLite file, the embedded default, never does.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def _inline_connect(database: str) -> Callable[[], InlineSqliteConnection]:
    def connect() -> InlineSqliteConnection:
        # Made on the worker thread and used from the loop's: sqlite3 must not check the thread.
        return InlineSqliteConnection(
            lambda: sqlite3.connect(database, timeout=30, check_same_thread=False), iter_chunk_size=64
        )

    return connect


#: The writer's own automatic checkpoint once the WAL holds this many pages (4 KiB each): a safety net only,
#: for when the checkpointer's thread falls behind (SQLite's default is 1,000).
WRITER_AUTOCHECKPOINT_PAGES = 10_000


class WalCheckpointer:
    """Checkpoints a SQLite database's WAL from a thread of its own, every ``interval`` seconds.

    With SQLite's automatic checkpoint, the commit that takes the WAL past 1,000 pages copies it back into
    the database file and syncs both, inside that commit: measured 6-10 ms, a commit in a hundred, and
    half of the writer's SQLite time; with the writer inline on the event loop, the loop would wait for it.
    A PASSIVE checkpoint here does the same work beside the writer (it takes no lock the writer needs, and
    sqlite3 releases the GIL while it runs). Started by the writer engine's first connection, stopped by
    ``Database.dispose``."""

    def __init__(self, path: str, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=1, isolation_level=None)
        except sqlite3.Error:
            return  # the writer's automatic checkpoint still bounds the WAL
        try:
            while not self._stop.wait(self.interval):
                with contextlib.suppress(
                    sqlite3.Error
                ):  # busy or gone: the next pass (or the writer) does it
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine_for(
    url: str,
    *,
    schema: str | None = None,
    name: str = "switchboard",
    read_only: bool = False,
    checkpointer: WalCheckpointer | None = None,
) -> AsyncEngine:
    """The writer engine, or with ``read_only`` an engine for reads (on SQLite: its own connections, so
    readers never queue behind the single writer; WAL lets them read while it writes)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Readers keep aiosqlite's thread (a long query must not stall the loop); the writer runs inline.
        inline = (
            {} if read_only or not parsed.database else {"async_creator": _inline_connect(parsed.database)}
        )
        engine = create_async_engine(
            url,
            pool_size=4 if read_only else 1,
            max_overflow=0,
            pool_timeout=60,
            connect_args={"timeout": 30},
            **inline,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (savepoint support)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            if checkpointer is not None:
                # The checkpointer's thread keeps the WAL short; the writer checkpoints only if it stalls.
                cur.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            if read_only:
                cur.execute("PRAGMA query_only=ON")
            cur.close()
            if checkpointer is not None:
                checkpointer.start()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the write lock up front (no deadlock on lock upgrade); readers never take it.
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine

    connect_args: dict[str, Any] = {"server_settings": {"application_name": name}}
    if schema:
        connect_args["server_settings"]["search_path"] = schema
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=connect_args
    )


class Database:
    """Owns one engine and its session factory for the life of a process."""

    def __init__(self, url: str, *, schema: str | None = None, name: str = "switchboard") -> None:
        self.url = url
        self.schema = schema if not is_sqlite(url) else None
        database = make_url(url).database if is_sqlite(url) else None
        self.checkpointer = WalCheckpointer(database) if database and database != ":memory:" else None
        self.engine = create_engine_for(url, schema=self.schema, name=name, checkpointer=self.checkpointer)
        # A Session class of our own, so that commit hooks are this database's and nobody else's.
        self._session_class: type[Session] = type("ServiceSession", (Session,), {})
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self._session_class
        )
        self.reader_engine = (
            create_engine_for(url, name=name, read_only=True) if self.is_sqlite else self.engine
        )
        self.read_sessionmaker = async_sessionmaker(self.reader_engine, expire_on_commit=False)

    def on_commit(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(session.info)`` after every commit (e.g. to wake the outbox relay)."""

        def _listener(session: Session) -> None:
            callback(session.info)

        event.listen(self._session_class, "after_commit", _listener)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (GET requests): never waits for SQLite's writer."""
        async with self.read_sessionmaker() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.reader_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        await self.engine.dispose()
        if self.reader_engine is not self.engine:
            await self.reader_engine.dispose()
