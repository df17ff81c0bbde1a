"""UTCDateTime's SQLite bind processor writes exactly the text SQLAlchemy's own DATETIME would (stored rows,
comparisons and indexes depend on it), and the SQLite writer's inline connection behaves like aiosqlite's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.base import UTCDateTime
from shared.db.engine import Database, InlineSqliteConnection

DIALECT = sqlite.dialect()
REFERENCE = sqlite.DATETIME().bind_processor(DIALECT)
OURS = UTCDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)

TABLE = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))

aware = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.builds(
    lambda d, minutes: d.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)


@given(aware)
def test_sqlite_bind_text_is_sqlalchemys_of_the_utc_time(value: datetime) -> None:
    assert REFERENCE is not None
    assert OURS is not None
    assert OURS(value) == REFERENCE(value.astimezone(UTC))


def test_sqlite_bind_rejects_naive_and_passes_none() -> None:
    assert OURS is not None
    assert OURS(None) is None
    with pytest.raises(ValueError, match="naive"):
        OURS(datetime(2026, 1, 1))


async def _insert_then_fail(db: Database) -> None:
    with pytest.raises(RuntimeError, match="rolled back"):
        async with db.transaction() as session:
            await _insert_and_raise(session)


async def _insert_and_raise(session: AsyncSession) -> None:
    await session.execute(text("INSERT INTO t (at) VALUES ('x')"))
    raise RuntimeError("rolled back")


async def test_sqlite_writer_runs_inline_and_round_trips(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with db.transaction() as session:
            raw = await (await session.connection()).get_raw_connection()
            assert isinstance(raw.driver_connection, InlineSqliteConnection)
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME)"))
            at = datetime(2026, 11, 26, 23, 0, 0, 1, tzinfo=timezone(timedelta(hours=10)))
            await session.execute(insert(TABLE).values(at=at))
        await _insert_then_fail(db)
        async with db.read_transaction() as session:
            rows = (await session.execute(text("SELECT at FROM t"))).all()
        assert [r.at for r in rows] == ["2026-11-26 13:00:00.000001"]  # the text SQLAlchemy writes, in UTC
        async with db.read_transaction() as session:
            assert (await session.scalar(select(TABLE.c.at))) == datetime(
                2026, 11, 26, 13, 0, 0, 1, tzinfo=UTC
            )
    finally:
        await db.dispose()


async def test_the_wal_is_checkpointed_beside_the_writer(tmp_path: Path) -> None:
    """The writer's automatic checkpoint waits for 10,000 pages; 2 MB of rows reach the database file
    within a second only because the checkpointer's thread copied them there."""
    path = tmp_path / "x.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        assert db.checkpointer is not None
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE blob (id INTEGER PRIMARY KEY, body TEXT)"))
        for _ in range(20):
            async with db.transaction() as session:
                await session.execute(
                    text("INSERT INTO blob (body) VALUES (:b)"), [{"b": "x" * 1000} for _ in range(100)]
                )
        for _ in range(40):
            if path.stat().st_size > 2_000_000:
                break
            await asyncio.sleep(0.1)
        assert path.stat().st_size > 2_000_000
    finally:
        await db.dispose()
    assert db.checkpointer._thread is not None
    assert not db.checkpointer._thread.is_alive()
