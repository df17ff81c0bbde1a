"""The database kit: units of work, and reads that never queue behind SQLite's single writer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import String, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP, Database, new_metadata
from tests.conftest import DatabaseTarget
from tests.support import database_with_tables


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Note(Base):
    __tablename__ = "note"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)


@pytest.fixture
async def db(db_factory: Callable[[str], DatabaseTarget]) -> AsyncIterator[Database]:
    target = db_factory("dbkit")
    database = await database_with_tables(target, Base.metadata)
    yield database
    await database.dispose()


async def count(db: Database) -> int:
    async with db.read_transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(Note)) or 0)


async def test_a_read_does_not_wait_for_a_long_write(db: Database) -> None:
    async with db.transaction() as s:
        s.add(Note(id="committed"))
    writer_holds_lock = asyncio.Event()
    release_writer = asyncio.Event()

    async def long_write() -> None:
        async with db.transaction() as s:
            s.add(Note(id="pending"))
            await s.flush()
            writer_holds_lock.set()
            await release_writer.wait()

    writer = asyncio.create_task(long_write())
    await writer_holds_lock.wait()
    # While the writer holds its transaction (and SQLite's only write connection), a read answers at once
    # and sees only committed data.
    assert await asyncio.wait_for(count(db), timeout=5) == 1
    release_writer.set()
    await writer
    assert await count(db) == 2


async def test_read_sessions_are_read_only(db: Database) -> None:
    async def sneaky_write() -> None:
        async with db.read_transaction() as s:
            s.add(Note(id="sneaky"))
            await s.flush()

    if db.is_sqlite:
        with pytest.raises(OperationalError):
            await sneaky_write()
    else:
        # PostgreSQL runs readers and writers side by side: one pool serves both.
        assert db.reader_engine is db.engine
    assert await count(db) == 0
