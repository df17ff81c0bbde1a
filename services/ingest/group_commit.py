"""Group commit: many requests' posts stored in one transaction, each request answered after that commit.

A commit costs a disk flush (SQLite WAL fsync, PostgreSQL WAL flush): paid once per request it caps
throughput at a few hundred requests per second per connection. Requests hand their canonical posts to a
queue; a writer takes everything waiting (up to ``max_posts``), stores it with its outbox rows in one
transaction and only then resolves each request's future. While one group commits the next one gathers;
a short linger (``INGEST_GROUP_COMMIT_LINGER_MS``, default 2 ms) lets more single-post requests join a
group, which measurably lowered the server CPU per post in bench/ingest.py. A 2xx therefore still means
"committed with its event".

This owns the transaction instead of the request dependency (STYLE habit 2) on purpose: one request's unit
of work is no longer a transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError

from services.ingest.service import CanonicalPost, Outcome, store_posts
from shared.db.engine import Database
from shared.errors import Unavailable
from shared.logging import get_logger

log = get_logger(__name__)


def _is_outage(exc: Exception) -> bool:
    """The database is unreachable: retrying request by request would only repeat the wait."""
    return isinstance(
        exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError | ConnectionError
    )


@dataclass
class _Request:
    posts: list[CanonicalPost]
    future: asyncio.Future[list[Outcome]]


class GroupCommitter:
    def __init__(
        self,
        *,
        db: Database,
        window: timedelta,
        max_posts: int = 2000,
        writers: int = 1,
        linger: float = 0.0,
    ) -> None:
        self.db = db
        self.window = window
        self.max_posts = max_posts
        self.linger = linger
        # SQLite has one writer whatever we do; PostgreSQL overlaps one group's commit with the next's work.
        self.writers = 1 if db.is_sqlite else max(1, writers)
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"ingest-group-commit-{i}") for i in range(self.writers)
        ]

    async def stop(self) -> None:
        """Commit what is queued, then stop (uvicorn drains requests before the lifespan ends)."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 10.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def submit(self, posts: list[CanonicalPost]) -> list[Outcome]:
        """Store ``posts`` (one request's); returns after the commit that made them durable."""
        if not posts:
            return []
        if self._stopping:
            raise Unavailable("ingest is shutting down.")
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(posts, future))
        return await future

    def _take_group(self, first: _Request) -> list[_Request]:
        group, count = [first], len(first.posts)
        while count < self.max_posts:
            try:
                request = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            group.append(request)
            count += len(request.posts)
        return group

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if self.linger > 0 and len(first.posts) < self.max_posts:
                # Like Kafka's linger.ms: a few ms more gathering amortises a transaction (and the relay's
                # wake-up after it) over many more requests when each request carries one post.
                await asyncio.sleep(self.linger)
            taken = self._take_group(first)
            try:
                await self._store(taken)
            finally:
                for _ in taken:
                    self._queue.task_done()

    async def _store(self, taken: list[_Request]) -> None:
        group = [r for r in taken if not r.future.done()]  # a client that went away needs no answer
        if not group:
            return
        try:
            results = await self._commit([p for r in group for p in r.posts])
        except Exception as exc:
            if len(group) > 1 and not _is_outage(exc):
                # One request's posts may be what the database refused: commit each request alone so
                # that it fails alone.
                for request in group:
                    await self._store([request])
                return
            log.error(
                "group_commit_failed", error_type=type(exc).__name__, posts=sum(len(r.posts) for r in group)
            )
            for r in group:
                if not r.future.done():
                    r.future.set_exception(Unavailable("The post could not be stored; try again."))
            return
        offset = 0
        for r in group:
            n = len(r.posts)
            if not r.future.done():
                r.future.set_result(results[offset : offset + n])
            offset += n

    async def _commit(self, posts: list[CanonicalPost]) -> list[Outcome]:
        # A unique-key race with another writer or replica loses the whole transaction; the retry reads the
        # winner's rows and answers those posts as the duplicates they are.
        for attempt in range(3):
            try:
                async with self.db.transaction() as session:
                    return await store_posts(
                        session=session,
                        posts=posts,
                        window=self.window,
                        now=datetime.now(UTC),
                    )
            except IntegrityError:
                if attempt == 2:
                    raise
                log.info("group_commit_retry", attempt=attempt + 1, posts=len(posts))
        raise AssertionError("unreachable")
