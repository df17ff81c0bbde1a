"""What the audit trail costs: transactions with and without audit entries, alone and concurrently, and how
fast a chain verifies. Each transaction inserts one row (the effect) and 0, 1 or 2 audit entries per row,
like a policy check (1) or a routed post (created + offered: 2); the "batch" rows are one consumer batch of
200 effects in one transaction. Concurrent writers show the head-row lock (PostgreSQL) or the single writer
(SQLite). CPU is this process's CPU time per transaction, so it is less disturbed by other load than the
wall-clock rate.

Run: ``make bench-audit`` (SQLite; PostgreSQL too when ``BENCH_DATABASE_URL`` is set, e.g.
postgresql+asyncpg://postgres@127.0.0.1:5432/test). About 30 s per database. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.audit import AuditEntryMixin, AuditHeadMixin, AuditTrail
from shared.db import TYPE_ANNOTATION_MAP, new_metadata
from shared.db.engine import Database


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Effect(Base):
    __tablename__ = "bench_effect"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    payload: Mapped[str] = mapped_column(String(200))


class Entry(AuditEntryMixin, Base):
    __tablename__ = "audit_entry"


class Head(AuditHeadMixin, Base):
    __tablename__ = "audit_head"


trail = AuditTrail(Entry, Head)


@dataclass
class Row:
    case: str
    writers: int
    transactions: int
    seconds: float
    cpu: float

    def render(self, db: str) -> str:
        rate = self.transactions / self.seconds
        cpu_us = self.cpu / self.transactions * 1e6
        return f"| {db} | {self.case} | {self.writers} | {self.transactions} | {rate:,.0f} | {cpu_us:,.0f} |"


async def _transaction(db: Database, *, effects: int, entries_per_effect: int) -> None:
    async with db.transaction() as session:
        for _ in range(effects):
            eid = str(uuid.uuid4())
            session.add(Effect(id=eid, payload="x" * 100))
            for n in range(entries_per_effect):
                trail.record(
                    session,
                    actor="bench",
                    action="bench.effect",
                    object_type="effect",
                    object_id=eid,
                    details={"n": n, "decision": "allow", "policy_version": "bench@1"},
                )


async def _run(
    db: Database, case: str, *, writers: int, per_writer: int, effects: int, entries_per_effect: int
) -> Row:
    async def writer() -> None:
        for _ in range(per_writer):
            await _transaction(db, effects=effects, entries_per_effect=entries_per_effect)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return Row(case, writers, writers * per_writer, time.perf_counter() - started, time.process_time() - cpu)


async def bench(url: str, schema: str | None) -> tuple[list[Row], float, int]:
    db = Database(url, schema=schema, name="bench-audit")
    async with db.engine.begin() as conn:
        if db.schema:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"'))
        await conn.run_sync(Base.metadata.create_all)
    rows = []
    try:
        concurrent = 1 if db.is_sqlite else 8
        for writers in sorted({1, concurrent}):
            per_writer = 400 // writers
            for entries in (0, 1, 2):
                rows.append(
                    await _run(
                        db,
                        f"1 effect, {entries} audit entr{'y' if entries == 1 else 'ies'}",
                        writers=writers,
                        per_writer=per_writer,
                        effects=1,
                        entries_per_effect=entries,
                    )
                )
        for entries in (0, 2):
            rows.append(
                await _run(
                    db,
                    f"batch of 200 effects, {entries} entries each",
                    writers=1,
                    per_writer=10,
                    effects=200,
                    entries_per_effect=entries,
                )
            )
        async with db.read_transaction() as session:
            started = time.perf_counter()
            result = await trail.verify(session)
            verify_seconds = time.perf_counter() - started
        assert result.ok, result.reason  # noqa: S101 - a benchmark of a broken chain measures nothing
        return rows, verify_seconds, result.entries
    finally:
        if db.schema:
            async with db.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE'))
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_DATABASE_URL"), help="PostgreSQL URL (optional)"
    )
    args = parser.parse_args()
    targets: list[tuple[str, str, str | None]] = []
    tmp = tempfile.mkdtemp(prefix="bench-audit-")
    targets.append(("SQLite", f"sqlite+aiosqlite:///{tmp}/audit.db", None))
    if args.pg:
        targets.append(("PostgreSQL", args.pg, f"bench_audit_{uuid.uuid4().hex[:8]}"))
    lines = [
        "| Database | Transaction | Writers | Transactions | Transactions/s | CPU µs/transaction |",
        "|---|---|---:|---:|---:|---:|",
    ]
    verifies = []
    for name, url, schema in targets:
        rows, seconds, entries = asyncio.run(bench(url, schema))
        lines += [r.render(name) for r in rows]
        verifies.append(
            f"{name}: verify walked {entries:,} entries in {seconds:.2f} s ({entries / seconds:,.0f}/s)"
        )
    print("\n".join(lines))
    print()
    print("\n".join(verifies))


if __name__ == "__main__":
    main()
