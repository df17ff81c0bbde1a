"""The outbox writer: rows buffered in the session go in at commit, in the order of emit, or not at all.

The relay publishes by id, so the ids must follow the order the rows were added, across flushes of other
state in the same transaction; a rolled-back transaction or savepoint leaves none of its rows behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP, Database, new_metadata
from shared.kafka import OutboxMixin
from shared.kafka.outbox import DIRTY_FLAG, OutboxWriter, insert_at_commit
from tests.support import database_with_tables


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Effect(Base):
    __tablename__ = "effect"
    id: Mapped[str] = mapped_column(String(50), primary_key=True)


@pytest.fixture
async def db(db_factory: Callable[[str], Any]) -> AsyncIterator[Database]:
    target = db_factory("outbox")
    database = await database_with_tables(target, Base.metadata)
    yield database
    await database.dispose()


def add(writer: OutboxWriter, session: Any, event_id: str) -> None:
    writer.add_raw(
        session,
        event_id=event_id,
        topic="t.v1",
        key=f"key-{event_id}",
        value=event_id.encode(),
        headers={"ce_type": "test", "n": event_id},
    )


async def stored(db: Database) -> list[tuple[str, str, bytes, dict[str, Any]]]:
    async with db.transaction() as s:
        rows = (
            await s.execute(
                select(Outbox.event_id, Outbox.key, Outbox.value, Outbox.headers).order_by(Outbox.id)
            )
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


class TestOrderOfEmit:
    async def test_ids_follow_the_order_rows_were_added_across_flushes_and_transactions(
        self, db: Database
    ) -> None:
        writer = OutboxWriter(Outbox)
        async with db.transaction() as s:
            add(writer, s, "a1")
            add(writer, s, "a2")
            s.add(Effect(id="e1"))
            await s.flush()  # other state flushed between emits
            add(writer, s, "a3")
        async with db.transaction() as s:
            for i in range(1, 51):
                add(writer, s, f"b{i:02d}")
        rows = await stored(db)
        assert [r[0] for r in rows] == ["a1", "a2", "a3", *(f"b{i:02d}" for i in range(1, 51))]
        assert rows[0][1:] == ("key-a1", b"a1", {"ce_type": "test", "n": "a1"})

    async def test_two_writers_on_one_table_keep_the_order_between_them(self, db: Database) -> None:
        first, second = OutboxWriter(Outbox), OutboxWriter(Outbox)
        async with db.transaction() as s:
            add(first, s, "1")
            add(second, s, "2")
            add(second, s, "3")
            add(first, s, "4")
        assert [r[0] for r in await stored(db)] == ["1", "2", "3", "4"]

    async def test_rows_of_another_table_interleaved_with_events_keep_both_orders(self, db: Database) -> None:
        writer = OutboxWriter(Outbox)
        effects = Effect.__table__
        async with db.transaction() as s:
            for i in range(3):
                add(writer, s, f"ev{i}")
                insert_at_commit(s, effects, {"id": f"effect{i}"})  # type: ignore[arg-type]
        assert [r[0] for r in await stored(db)] == ["ev0", "ev1", "ev2"]
        async with db.transaction() as s:
            assert set((await s.execute(select(Effect.id))).scalars()) == {"effect0", "effect1", "effect2"}

    async def test_the_commit_hook_sees_the_dirty_flag_that_wakes_the_relay(self, db: Database) -> None:
        seen: list[bool] = []
        db.on_commit(lambda info: seen.append(bool(info.pop(DIRTY_FLAG, False))))
        async with db.transaction() as s:
            add(OutboxWriter(Outbox), s, "x")
        async with db.transaction() as s:
            s.add(Effect(id="no-event"))
        assert seen == [True, False]


class TestRollback:
    async def test_a_rolled_back_transaction_leaves_no_row_and_the_next_one_is_clean(
        self, db: Database
    ) -> None:
        writer = OutboxWriter(Outbox)

        async def unit_of_work_that_fails() -> None:
            async with db.transaction() as s:
                add(writer, s, "lost")
                raise RuntimeError("abort")

        with pytest.raises(RuntimeError):
            await unit_of_work_that_fails()
        async with db.transaction() as s:
            add(writer, s, "kept")
        assert [r[0] for r in await stored(db)] == ["kept"]

    async def test_a_rolled_back_savepoint_drops_only_its_own_rows(self, db: Database) -> None:
        writer = OutboxWriter(Outbox)
        async with db.transaction() as s:
            add(writer, s, "before")
            savepoint = await s.begin_nested()
            add(writer, s, "inside-rolled-back")
            await savepoint.rollback()
            async with s.begin_nested():
                add(writer, s, "inside-committed")
            add(writer, s, "after")
        assert [r[0] for r in await stored(db)] == ["before", "inside-committed", "after"]

    async def test_rows_of_a_session_closed_without_commit_never_reach_its_next_transaction(
        self, db: Database
    ) -> None:
        writer = OutboxWriter(Outbox)
        async with db.sessionmaker() as s:
            await s.begin()
            add(writer, s, "abandoned")
            await s.close()
            async with s.begin():
                add(writer, s, "kept")
        assert [r[0] for r in await stored(db)] == ["kept"]
