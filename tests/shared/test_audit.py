"""The audit chain: pure chain properties (hypothesis), then appends and verification on a real database
(SQLite, or PostgreSQL with TEST_DATABASE_URL): atomic with the caller's transaction, savepoint rollbacks,
tampering with rows, and concurrent appends that must never fork the chain."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.audit import (
    GENESIS,
    AuditEntryMixin,
    AuditHeadMixin,
    AuditTrail,
    canonical_json,
    entry_hash,
    make_fields,
    verify_database,
    verify_entries,
)
from shared.db import TYPE_ANNOTATION_MAP, new_metadata
from shared.db.engine import Database
from tests.conftest import DatabaseTarget
from tests.support import database_with_tables

# --- pure chain ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    correlation_id: str | None
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
short = st.text(max_size=12)
details = st.dictionaries(
    st.sampled_from(["decision", "policy_version", "count", "ok", "ids", "reason"]),
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), short, st.lists(short, max_size=3)),
    max_size=4,
)
entry_fields = st.builds(
    lambda actor, action, oid, cid, d, dt: make_fields(
        actor=actor,
        action=action,
        object_type="thing",
        object_id=oid,
        details=d,
        at=T0 + timedelta(microseconds=dt),
        correlation_id=cid,
    ),
    short,
    st.sampled_from(["policy.check", "assignment.created", "policy.mode_changed"]),
    short,
    st.one_of(st.none(), short),
    details,
    st.integers(0, 10**9),
)


def chain(fields: list[dict[str, Any]]) -> list[Row]:
    rows, prev = [], GENESIS
    for seq, f in enumerate(fields, start=1):
        digest = entry_hash(prev, seq, f)
        rows.append(Row(seq=seq, prev_hash=prev, entry_hash=digest, **f))
        prev = digest
    return rows


def head_of(rows: list[Row]) -> tuple[int, str]:
    return (rows[-1].seq, rows[-1].entry_hash) if rows else (0, GENESIS)


class TestPureChain:
    @given(st.lists(entry_fields, max_size=15))
    def test_an_untouched_chain_verifies(self, fields: list[dict[str, Any]]) -> None:
        rows = chain(fields)
        result = verify_entries(rows, head_of(rows))
        assert result.ok, result.reason
        assert result.verified == len(rows)
        assert result.first_broken_seq is None

    @given(st.lists(entry_fields, min_size=1, max_size=12), st.data())
    def test_any_single_edit_is_detected_at_that_entry(self, fields: list[dict[str, Any]], data: Any) -> None:
        rows = chain(fields)
        i = data.draw(st.integers(0, len(rows) - 1))
        column = data.draw(
            st.sampled_from(
                ["at", "actor", "action", "object_type", "object_id", "correlation_id", "details"]
            )
        )
        old = getattr(rows[i], column)
        new: Any
        if column == "at":
            new = old + timedelta(microseconds=1)
        elif column == "details":
            new = {**old, "tampered": True}
        elif column == "correlation_id":
            new = (old or "") + "x"
        else:
            new = old + "x"
        rows[i] = replace(rows[i], **{column: new})
        result = verify_entries(rows, head_of(chain(fields)))
        assert not result.ok
        assert result.first_broken_seq == i + 1

    @given(st.lists(entry_fields, min_size=2, max_size=12), st.data())
    def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(
        self, fields: list[dict[str, Any]], data: Any
    ) -> None:
        rows = chain(fields)
        i = data.draw(st.integers(0, len(rows) - 2))
        forged = {**fields[i], "actor": fields[i]["actor"] + "-forged"}
        rows[i] = replace(
            rows[i], actor=forged["actor"], entry_hash=entry_hash(rows[i].prev_hash, i + 1, forged)
        )
        result = verify_entries(rows, head_of(chain(fields)))
        assert not result.ok
        assert result.first_broken_seq == i + 2

    @given(st.lists(entry_fields, min_size=1, max_size=12), st.data())
    def test_any_single_deletion_is_detected(self, fields: list[dict[str, Any]], data: Any) -> None:
        rows = chain(fields)
        head = head_of(rows)
        i = data.draw(st.integers(0, len(rows) - 1))
        del rows[i]
        result = verify_entries(rows, head)
        assert not result.ok
        assert result.first_broken_seq == i + 1

    @given(st.lists(entry_fields, min_size=2, max_size=12), st.data())
    def test_swapping_two_entries_is_detected(self, fields: list[dict[str, Any]], data: Any) -> None:
        rows = chain(fields)
        head = head_of(rows)
        i = data.draw(st.integers(0, len(rows) - 2))
        j = data.draw(st.integers(i + 1, len(rows) - 1))
        # Swap the contents but keep the seq column in order (what a reader sorting by seq sees) ...
        a, b = rows[i], rows[j]
        swapped = [*rows]
        swapped[i], swapped[j] = replace(b, seq=a.seq), replace(a, seq=b.seq)
        result = verify_entries(swapped, head)
        assert not result.ok
        assert result.first_broken_seq == i + 1
        # ... or with their seq numbers (then the rows come back in the old order, but out of place).
        result = verify_entries([rows[k] for k in range(len(rows)) if k not in (i, j)] + [b, a], head)
        assert not result.ok

    @given(st.lists(entry_fields, min_size=1, max_size=12), st.data())
    def test_a_cut_tail_is_detected_by_the_head_anchor(self, fields: list[dict[str, Any]], data: Any) -> None:
        rows = chain(fields)
        head = head_of(rows)
        keep = data.draw(st.integers(0, len(rows) - 1))
        result = verify_entries(rows[:keep], head)
        assert not result.ok
        assert result.first_broken_seq == keep + 1

    def test_canonical_json_is_key_order_independent_and_compact(self) -> None:
        assert canonical_json({"b": 1, "a": [1, "é"]}) == canonical_json({"a": [1, "é"], "b": 1})
        assert canonical_json({"b": 1, "a": 2}) == b'{"a":2,"b":1}'

    def test_details_refuse_personal_information_keys_and_odd_types(self) -> None:
        common: dict[str, Any] = {
            "actor": "a",
            "action": "x",
            "object_type": "t",
            "object_id": "1",
            "at": T0,
            "correlation_id": None,
        }
        for bad in ({"text": "hello"}, {"nested": {"author": {"handle": "@x"}}}, {"Email": "a@b"}):
            with pytest.raises(ValueError, match="must not carry"):
                make_fields(details=bad, **common)
        with pytest.raises(ValueError, match="unsupported type"):
            make_fields(details={"blob": b"\x00"}, **common)
        with pytest.raises(ValueError, match="exceed"):
            make_fields(details={f"k{i}": "x" * 400 for i in range(20)}, **common)
        fields = make_fields(details={"reason": "a\x00b" + "y" * 900}, **{**common, "actor": "s" * 999})
        assert fields["details"]["reason"].startswith("a\ufffdb")
        assert len(fields["details"]["reason"]) == 500
        assert len(fields["actor"]) == 200


# --- on a real database -------------------------------------------------------------------------------------


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Entry(AuditEntryMixin, Base):
    __tablename__ = "audit_entry"


class Head(AuditHeadMixin, Base):
    __tablename__ = "audit_head"


class Thing(Base):
    """An effect the audit entry must commit (or not) together with."""

    __tablename__ = "thing"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)


trail = AuditTrail(Entry, Head)


@pytest.fixture
async def audit_db(
    db_factory: Callable[[str], DatabaseTarget],
) -> AsyncIterator[tuple[Database, DatabaseTarget]]:
    target = db_factory("audit")
    db = await database_with_tables(target, Base.metadata, name="audit-test")
    yield db, target
    await db.dispose()


def note(session: Any, n: int, **extra: Any) -> None:
    trail.record(session, actor="tester", action="thing.made", object_type="thing", object_id=str(n), **extra)


async def verify(db: Database) -> Any:
    async with db.read_transaction() as session:
        return await trail.verify(session)


async def seqs(db: Database) -> list[tuple[int, str]]:
    async with db.read_transaction() as session:
        rows = await session.execute(select(Entry.seq, Entry.object_id).order_by(Entry.seq))
        return [(int(s), str(o)) for s, o in rows]


async def cli(target: DatabaseTarget) -> tuple[int, str]:
    """``python -m shared.audit verify`` as make audit-verify runs it: exit code and stdout."""
    args = ["-m", "shared.audit", "verify", "--url", target.url]
    if target.schema:
        args += ["--schema", target.schema]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()}
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


class TestAppendOnDatabase:
    async def test_entries_chain_across_transactions_and_verify(self, audit_db: Any) -> None:
        db, _ = audit_db
        for n in range(3):
            async with db.transaction() as session:
                session.add(Thing(id=n))
                note(session, n, details={"n": n, "when": T0}, correlation_id="c1")
                note(session, n + 100)
        assert await seqs(db) == [(1, "0"), (2, "100"), (3, "1"), (4, "101"), (5, "2"), (6, "102")]
        result = await verify(db)
        assert result.ok
        assert result.entries == 6
        assert result.verified == 6
        assert result.head_seq == 6

    async def test_a_rolled_back_transaction_leaves_no_entry(self, audit_db: Any) -> None:
        db, _ = audit_db

        async def failing() -> None:
            async with db.transaction() as session:
                session.add(Thing(id=1))
                note(session, 1)
                raise RuntimeError("effect failed")

        with pytest.raises(RuntimeError, match="effect failed"):
            await failing()
        async with db.transaction() as session:
            note(session, 2)
        assert await seqs(db) == [(1, "2")]

    async def test_a_rolled_back_savepoint_drops_only_its_own_entries(self, audit_db: Any) -> None:
        db, _ = audit_db

        async def failing_savepoint(session: Any) -> None:
            async with session.begin_nested():
                note(session, 2)
                async with session.begin_nested():
                    note(session, 3)
                raise RuntimeError("handler failed")

        async with db.transaction() as session:
            note(session, 1)
            with pytest.raises(RuntimeError):
                await failing_savepoint(session)
            async with session.begin_nested():
                note(session, 4)
            note(session, 5)
        assert [oid for _, oid in await seqs(db)] == ["1", "4", "5"]
        assert (await verify(db)).ok

    async def test_a_failing_effect_at_commit_takes_the_entry_with_it(self, audit_db: Any) -> None:
        db, _ = audit_db
        async with db.transaction() as session:
            session.add(Thing(id=1))

        async def conflicting() -> None:
            async with db.transaction() as session:
                note(session, 1)
                session.add(Thing(id=1))  # flushed at commit, with the audit append: the commit fails

        with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"):
            await conflicting()
        assert await seqs(db) == []
        async with db.read_transaction() as session:
            assert await session.scalar(select(Head.seq)) in (None, 0)

    async def test_tampering_with_rows_is_detected(self, audit_db: Any) -> None:
        db, target = audit_db
        for n in range(5):
            async with db.transaction() as session:
                note(session, n, details={"decision": "allow"})
        async with db.transaction() as session:
            await session.execute(update(Entry).where(Entry.seq == 3).values(details={"decision": "block"}))
        result = await verify(db)
        assert (result.ok, result.first_broken_seq) == (False, 3)
        code, out = await cli(target)
        assert code == 1
        assert '"first_broken_seq": 3' in out
        assert (await verify_database(target.url, schema=target.schema)).first_broken_seq == 3
        async with db.transaction() as session:
            await session.execute(update(Entry).where(Entry.seq == 3).values(details={"decision": "allow"}))
        assert (await verify(db)).ok
        assert (await cli(target))[0] == 0
        async with db.transaction() as session:
            await session.execute(delete(Entry).where(Entry.seq == 2))
        assert (await verify(db)).first_broken_seq == 2

    async def test_a_deleted_tail_is_detected_and_a_deleted_head_is_rebuilt(self, audit_db: Any) -> None:
        db, _ = audit_db
        for n in range(4):
            async with db.transaction() as session:
                note(session, n)
        async with db.transaction() as session:
            await session.execute(delete(Entry).where(Entry.seq >= 3))
        result = await verify(db)
        assert (result.ok, result.first_broken_seq, result.head_seq) == (False, 3, 4)
        async with db.transaction() as session:
            await session.execute(delete(Head))
        assert (await verify(db)).first_broken_seq == 3  # head anchor missing
        async with db.transaction() as session:
            note(session, 9)
        assert await seqs(db) == [(1, "0"), (2, "1"), (3, "9")]
        assert (await verify(db)).ok


class TestConcurrentAppends:
    async def test_concurrent_transactions_never_fork_the_chain(self, audit_db: Any) -> None:
        """On PostgreSQL many connections append at once (the head row lock serialises them); on SQLite the
        single writer does. Every transaction commits and the chain is one unbroken line."""
        db, target = audit_db
        writers, per_writer = (12, 8) if target.is_postgres else (4, 5)

        async def writer(w: int) -> None:
            for i in range(per_writer):
                async with db.transaction() as session:
                    session.add(Thing(id=w * 1000 + i))
                    note(session, w * 1000 + i)
                    await asyncio.sleep(0)  # let the others interleave inside their transactions
                    note(session, w * 1000 + i + 500)

        await asyncio.gather(*(writer(w) for w in range(writers)))
        rows = await seqs(db)
        assert [s for s, _ in rows] == list(range(1, writers * per_writer * 2 + 1))
        result = await verify(db)
        assert result.ok
        assert result.entries == writers * per_writer * 2
        async with db.read_transaction() as session:
            assert await session.scalar(select(func.count()).select_from(Thing)) == writers * per_writer
        # Both entries of one transaction are adjacent: a transaction's entries are appended together.
        by_seq = dict(rows)
        for s, oid in rows:
            if int(oid) % 1000 < 500:
                assert by_seq[s + 1] == str(int(oid) + 500)


async def test_the_cli_skips_a_missing_sqlite_file_and_fails_without_the_table(tmp_path: Any) -> None:
    code, out = await cli(DatabaseTarget(f"sqlite+aiosqlite:///{tmp_path}/none.db", None))
    assert code == 0
    assert "no database file" in out
    (tmp_path / "empty.db").write_bytes(b"")
    code, out = await cli(DatabaseTarget(f"sqlite+aiosqlite:///{tmp_path}/empty.db", None))
    assert code == 2
    assert "no such table" in out
