"""Hash-chained audit trail: who did what to which object, when, appended atomically with the effect.

Each service that keeps an audit log declares two tables from the mixins here (``AuditEntryMixin``,
``AuditHeadMixin``) in its own declarative base and wraps them in an ``AuditTrail``. Domain code calls
``trail.record(session, actor=..., action=..., object_type=..., object_id=..., details=...)`` inside the
transaction that makes the change. The entry is sequenced and hashed when that transaction commits (a
``before_commit`` hook), so:

- the entry commits with the effect or not at all (a savepoint that rolls back drops its entries, a failed
  append fails the commit);
- the chain lock (the head row, ``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's single writer) is held only
  from the append to the commit, not for the whole transaction, so audited work is not serialised.

Chain: ``entry_hash = SHA-256(prev_hash || "|" || seq || "|" || canonical_json(fields))`` where the first
entry's ``prev_hash`` is 64 zeros and ``fields`` are at, actor, action, object type and id, correlation id and
details. The head row keeps the last (seq, hash): ``verify`` walks the chain and reports the first broken seq
of an edited, deleted or reordered entry, and a truncated tail. Anyone who can write the database can rewrite
the whole chain and its head; record the head hash elsewhere (``python -m shared.audit verify`` prints it) to
detect that too. See docs/audit.md.

Details must never hold raw personal information (post text, author details): ``record`` rejects the usual
keys and bounds every string, list and the whole entry.

CLI: ``python -m shared.audit verify --url URL [--schema S]`` exits 1 on a broken chain (``make
audit-verify`` runs it against every audited service's database).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import JSON, BigInteger, Integer, String, Table, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from shared.auth import Principal, Role, authenticated, require_roles
from shared.db.base import UTCDateTime, utcnow, within_transaction
from shared.deps import SessionDep
from shared.errors import problem_responses
from shared.http import MAX_PAGE_SIZE
from shared.inputs import QueryAwareDatetime
from shared.logging import current_correlation_id, get_logger

log = get_logger(__name__)

GENESIS = "0" * 64
HEAD_ID = 1
MAX_ACTOR = 200
MAX_ACTION = 64
MAX_OBJECT_TYPE = 64
MAX_OBJECT_ID = 200
MAX_CORRELATION_ID = 200
MAX_DETAIL_STRING = 500
MAX_DETAIL_ITEMS = 50
MAX_DETAILS_BYTES = 4000
MAX_PAGE = MAX_PAGE_SIZE  # the platform's one page-size cap (shared.http)
VERIFY_PAGE = 1000

#: Keys that would carry raw personal information or free text about a member of the public.
FORBIDDEN_DETAIL_KEYS = frozenset(
    {
        "text",
        "draft",
        "body",
        "redacted_text",
        "author",
        "author_id",
        "author_ref",
        "author_name",
        "author_handle",
        "handle",
        "display_name",
        "name_of_author",
        "email",
        "phone",
        "address",
        "value",
    }
)


# --- tables -------------------------------------------------------------------------------------------------


class AuditEntryMixin:
    """One audited action. ``seq`` is the position in the chain (1, 2, ...); never updated or deleted."""

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(MAX_ACTOR))
    action: Mapped[str] = mapped_column(String(MAX_ACTION), index=True)
    object_type: Mapped[str] = mapped_column(String(MAX_OBJECT_TYPE))
    object_id: Mapped[str] = mapped_column(String(MAX_OBJECT_ID), index=True)
    correlation_id: Mapped[str | None] = mapped_column(String(MAX_CORRELATION_ID))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHeadMixin:
    """The chain's anchor: the last entry's seq and hash. Its row is also the lock that serialises appends."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- canonical form and hashing (pure) ----------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, no NaN: the same bytes for the same value on every backend."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def format_at(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, seq: int, fields: dict[str, Any]) -> str:
    """``fields``: at (datetime), actor, action, object_type, object_id, correlation_id, details."""
    body = canonical_json({**fields, "at": format_at(fields["at"])})
    return hashlib.sha256(prev_hash.encode() + b"|" + str(seq).encode() + b"|" + body).hexdigest()


def _clean(value: Any, limit: int) -> str:
    """Text a database accepts everywhere (no NUL, valid UTF-8), at most ``limit`` characters."""
    text = (value if isinstance(value, str) else str(value))[:limit]
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if text.isascii():  # the common case: nothing to repair
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _clean_details(value: Any, path: str, depth: int = 0) -> Any:
    if depth > 3:
        raise ValueError(f"audit details nest too deep at {path}")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"audit details: {path} is not a finite number")
        return value
    if isinstance(value, str):
        return _clean(value, MAX_DETAIL_STRING)
    if isinstance(value, datetime):
        return format_at(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return [_clean_details(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(items[:MAX_DETAIL_ITEMS])]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in list(value.items())[:MAX_DETAIL_ITEMS]:
            key = _clean(k, 64)
            if key.lower() in FORBIDDEN_DETAIL_KEYS:
                raise ValueError(f"audit details must not carry {key!r} (personal information or free text)")
            out[key] = _clean_details(v, f"{path}.{key}", depth + 1)
        return out
    raise ValueError(f"audit details: {path} has unsupported type {type(value).__name__}")


def make_fields(
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    details: dict[str, Any] | None,
    at: datetime,
    correlation_id: str | None,
) -> dict[str, Any]:
    """The hashed fields of one entry, normalised exactly as they will be stored."""
    if at.tzinfo is None:
        raise ValueError("audit time must be timezone-aware")
    cleaned = _clean_details(details or {}, "details")
    if len(canonical_json(cleaned)) > MAX_DETAILS_BYTES:
        raise ValueError(f"audit details exceed {MAX_DETAILS_BYTES} bytes")
    return {
        "at": at.astimezone(UTC),
        "actor": _clean(actor, MAX_ACTOR),
        "action": _clean(action, MAX_ACTION),
        "object_type": _clean(object_type, MAX_OBJECT_TYPE),
        "object_id": _clean(object_id, MAX_OBJECT_ID),
        "correlation_id": _clean(correlation_id, MAX_CORRELATION_ID) if correlation_id else None,
        "details": cleaned,
    }


class EntryLike(Protocol):
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


def fields_of(row: EntryLike) -> dict[str, Any]:
    return {
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "correlation_id": row.correlation_id,
        "details": row.details,
    }


@dataclass
class Verification:
    ok: bool = True
    entries: int = 0
    verified: int = 0
    first_broken_seq: int | None = None
    reason: str | None = None
    head_seq: int | None = None
    head_hash: str | None = None


@dataclass
class ChainWalker:
    """Feeds entries in seq order and stops at the first break (pure; used by the database verify)."""

    expected_seq: int = 1
    prev_hash: str = GENESIS
    result: Verification = field(default_factory=Verification)

    def feed(self, row: EntryLike) -> bool:
        """False once the chain is broken (stop feeding)."""
        r = self.result
        if not r.ok:
            return False
        if row.seq != self.expected_seq:
            return self._broken(self.expected_seq, f"entry {self.expected_seq} is missing or out of place")
        if row.prev_hash != self.prev_hash:
            return self._broken(row.seq, f"entry {row.seq} does not follow entry {row.seq - 1}")
        if entry_hash(row.prev_hash, row.seq, fields_of(row)) != row.entry_hash:
            return self._broken(row.seq, f"entry {row.seq} was changed after it was written")
        r.verified += 1
        self.expected_seq += 1
        self.prev_hash = row.entry_hash
        return True

    def finish(self, head: tuple[int, str] | None, *, entries: int) -> Verification:
        r = self.result
        r.entries = entries
        if head is not None:
            r.head_seq, r.head_hash = head
        if not r.ok:
            return r
        last = self.expected_seq - 1
        if head is None:
            if last > 0:
                self._broken(last + 1, "the chain's head anchor is missing")
        elif head[0] > last:
            self._broken(last + 1, f"entries {last + 1} to {head[0]} are missing (the tail was cut)")
        elif head[1] != self.prev_hash:
            self._broken(last, f"entry {last} does not match the head anchor")
        return r

    def _broken(self, seq: int, reason: str) -> bool:
        self.result.ok, self.result.first_broken_seq, self.result.reason = False, seq, reason
        return False


def verify_entries(rows: Iterable[EntryLike], head: tuple[int, str] | None) -> Verification:
    """Verify a whole chain held in memory (rows in seq order, as read from the table)."""
    walker = ChainWalker()
    count = 0
    for row in rows:
        count += 1
        walker.feed(row)
    return walker.finish(head, entries=count)


# --- appending inside the caller's transaction --------------------------------------------------------------

_PENDING = "shared.audit.pending"


@dataclass(frozen=True)
class _Pending:
    trail: AuditTrail
    transaction: SessionTransaction
    fields: dict[str, Any]


def _sync(session: AsyncSession | Session) -> Session:
    return session.sync_session if isinstance(session, AsyncSession) else session


class AuditTrail:
    """One service's audit chain over its two tables."""

    def __init__(self, entry_model: type[AuditEntryMixin], head_model: type[AuditHeadMixin]) -> None:
        self.entry_model = entry_model
        self.head_model = head_model

    def record(
        self,
        session: AsyncSession | Session,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Queue an entry in the session's current transaction; it is chained when that transaction commits.

        Raises ValueError for details that are too large or carry personal-information keys (a programming
        error, caught by the tests, never user input)."""
        sync = _sync(session)
        transaction = sync.get_nested_transaction() or sync.get_transaction()
        if transaction is None:
            raise RuntimeError("audit entries must be recorded inside a transaction")
        fields = make_fields(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            details=details,
            at=at or utcnow(),
            correlation_id=correlation_id or current_correlation_id(),
        )
        sync.info.setdefault(_PENDING, []).append(_Pending(self, transaction, fields))

    def _append(self, session: Session, fields: Sequence[dict[str, Any]]) -> None:
        # The transaction's own changes are flushed first, so the chain lock is taken last and held only for
        # the three statements below and the commit (and never while waiting for another row lock).
        session.flush()
        conn = session.connection()
        head: Table = self.head_model.__table__  # type: ignore[attr-defined]
        entries: Table = self.entry_model.__table__  # type: ignore[attr-defined]
        lock = select(head.c.seq, head.c.entry_hash).where(head.c.id == HEAD_ID).with_for_update()
        row = conn.execute(lock).one_or_none()
        if row is None:
            self._create_head(session)
            row = conn.execute(lock).one()
        seq, prev = int(row[0]), str(row[1])
        rows = []
        for f in fields:
            seq += 1
            digest = entry_hash(prev, seq, f)
            rows.append({**f, "seq": seq, "prev_hash": prev, "entry_hash": digest})
            prev = digest
        conn.execute(insert(entries), rows)
        conn.execute(
            update(head).where(head.c.id == HEAD_ID).values(seq=seq, entry_hash=prev, updated_at=utcnow())
        )

    def _create_head(self, session: Session) -> None:
        """The first append (or one after the head row was deleted: then it is rebuilt from the last entry,
        and that is logged, since the truncation check could not see past the deletion)."""
        entry_model = self.entry_model
        last = session.execute(
            select(entry_model.seq, entry_model.entry_hash).order_by(entry_model.seq.desc()).limit(1)
        ).one_or_none()
        if last is not None:
            log.warning("audit_head_missing_rebuilt", table=self.entry_model.__tablename__, seq=last[0])  # type: ignore[attr-defined]
        seq, digest = (int(last[0]), str(last[1])) if last is not None else (0, GENESIS)
        values = {"id": HEAD_ID, "seq": seq, "entry_hash": digest, "updated_at": utcnow()}
        dialect = session.get_bind().dialect.name
        table = self.head_model.__table__  # type: ignore[attr-defined]
        if dialect == "postgresql":
            session.execute(postgresql.insert(table).values(values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            session.execute(sqlite.insert(table).values(values).on_conflict_do_nothing())
        else:
            session.execute(insert(table).values(values))

    # --- reading ---

    async def head(self, session: AsyncSession) -> tuple[int, str] | None:
        row = (
            await session.execute(
                select(self.head_model.seq, self.head_model.entry_hash).where(self.head_model.id == HEAD_ID)
            )
        ).one_or_none()
        return (int(row[0]), str(row[1])) if row is not None else None

    async def _walk(self, session: AsyncSession, upto: int | None) -> AsyncIterator[AuditEntryMixin]:
        model = self.entry_model
        after = 0
        while True:
            stmt = select(model).where(model.seq > after).order_by(model.seq).limit(VERIFY_PAGE)
            if upto is not None:
                stmt = stmt.where(model.seq <= upto)
            rows = (await session.execute(stmt)).scalars().all()
            for row in rows:
                yield row
            if len(rows) < VERIFY_PAGE:
                return
            after = rows[-1].seq

    async def verify(self, session: AsyncSession) -> Verification:
        """Walk the chain in pages. The head is read first and entries after it are ignored: they were
        appended while this ran (a snapshot on SQLite; READ COMMITTED on PostgreSQL)."""
        head = await self.head(session)
        walker = ChainWalker()
        async for row in self._walk(session, head[0] if head is not None else None):
            if not walker.feed(row):
                break
        total = await session.scalar(select(func.count()).select_from(self.entry_model))
        return walker.finish(head, entries=int(total or 0))

    async def page(
        self,
        session: AsyncSession,
        *,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> Sequence[AuditEntryMixin]:
        """Entries newest first."""
        model = self.entry_model
        stmt = select(model).order_by(model.seq.desc()).limit(min(limit, MAX_PAGE))
        if action is not None:
            stmt = stmt.where(model.action == action)
        if object_type is not None:
            stmt = stmt.where(model.object_type == object_type)
        if object_id is not None:
            stmt = stmt.where(model.object_id == object_id)
        if actor is not None:
            stmt = stmt.where(model.actor == actor)
        if since is not None:
            stmt = stmt.where(model.at >= since)
        if before_seq is not None:
            stmt = stmt.where(model.seq < before_seq)
        return (await session.execute(stmt)).scalars().all()

    def router(self) -> APIRouter:
        return audit_router(self)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # A savepoint committing fires this too: its entries wait for the outer commit.
    if session.in_nested_transaction() or _PENDING not in session.info:
        return
    pending: list[_Pending] = session.info.pop(_PENDING)
    by_trail: dict[int, tuple[AuditTrail, list[dict[str, Any]]]] = {}
    for p in pending:
        by_trail.setdefault(id(p.trail), (p.trail, []))[1].append(p.fields)
    for trail, fields in by_trail.values():
        trail._append(session, fields)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    """Entries recorded in a transaction or savepoint that rolled back are forgotten with it."""
    pending: list[_Pending] | None = session.info.get(_PENDING)
    if not pending:
        return
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
        return
    kept = [p for p in pending if not within_transaction(p.transaction, previous_transaction)]
    session.info[_PENDING] = kept


# --- HTTP: GET /v1/audit, GET /v1/audit/verify --------------------------------------------------------------


class AuditEntryRead(BaseModel):
    seq: int
    at: datetime
    actor: str = Field(description="Token subject of the caller, or `service:<name>` for the service itself.")
    action: str
    object_type: str
    object_id: str
    correlation_id: str | None
    details: dict[str, Any] = Field(
        description="Ids, outcomes and reasons; never post text or author details."
    )
    prev_hash: str = Field(description="entry_hash of the previous entry (64 zeros for the first).")
    entry_hash: str = Field(
        description="SHA-256 hex of prev_hash | seq | canonical JSON of the other fields (docs/audit.md)."
    )


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    next_before_seq: int | None = Field(description="Pass as before_seq for the next (older) page.")


class AuditVerificationRead(BaseModel):
    ok: bool
    entries: int = Field(description="Entries in the log.")
    verified: int = Field(description="Entries checked intact, from seq 1 up to the first break.")
    first_broken_seq: int | None = Field(
        description="First seq that was edited, deleted, reordered or cut off; null when the chain is intact."
    )
    reason: str | None
    head_seq: int | None = Field(
        description="The head anchor's last seq (record it elsewhere to detect a rewrite of the whole chain)."
    )
    head_hash: str | None


#: Filters are compared with stored text; a NUL character cannot be stored (PostgreSQL) so it cannot match.
NO_NUL = r"^[^\x00]*$"
AuditAdmin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


def audit_router(trail: AuditTrail) -> APIRouter:
    router = APIRouter(
        prefix="/v1/audit",
        tags=["audit"],
        responses=problem_responses(401, 403),
        dependencies=[Depends(authenticated)],
    )

    @router.get(
        "",
        response_model=AuditPage,
        summary="The audit log, newest first (admin)",
        description=(
            "Policy decisions, assignments, approvals, mode switches, rule and pack changes and dead-letter "
            "replays recorded by this service, each with its place in the hash chain. Filters combine with "
            f"AND; pages of at most {MAX_PAGE}, continue with `before_seq`."
        ),
        responses=problem_responses(422),
    )
    async def list_audit(
        session: SessionDep,
        _principal: AuditAdmin,
        action: Annotated[
            str | None, Query(max_length=MAX_ACTION, pattern=NO_NUL, description="e.g. `policy.check`")
        ] = None,
        object_type: Annotated[str | None, Query(max_length=MAX_OBJECT_TYPE, pattern=NO_NUL)] = None,
        object_id: Annotated[str | None, Query(max_length=MAX_OBJECT_ID, pattern=NO_NUL)] = None,
        actor: Annotated[str | None, Query(max_length=MAX_ACTOR, pattern=NO_NUL)] = None,
        since: Annotated[
            QueryAwareDatetime | None, Query(description="Entries at or after this time.")
        ] = None,
        before_seq: Annotated[int | None, Query(ge=1, le=2**62)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> AuditPage:
        rows = await trail.page(
            session,
            action=action,
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            since=since,
            before_seq=before_seq,
            limit=limit,
        )
        return AuditPage(
            items=[AuditEntryRead.model_validate(r, from_attributes=True) for r in rows],
            next_before_seq=rows[-1].seq if len(rows) == limit else None,
        )

    @router.get(
        "/verify",
        response_model=AuditVerificationRead,
        summary="Walk the whole hash chain and report the first broken entry (admin)",
    )
    async def verify_audit(session: SessionDep, _principal: AuditAdmin) -> AuditVerificationRead:
        result = await trail.verify(session)
        if not result.ok:
            log.error("audit_chain_broken", first_broken_seq=result.first_broken_seq, reason=result.reason)
        return AuditVerificationRead(**result.__dict__)

    return router


# --- CLI ----------------------------------------------------------------------------------------------------


async def verify_database(
    url: str, *, schema: str | None, entry_table: str = "audit_entry", head_table: str = "audit_head"
) -> Verification:
    """Verify one service's chain without importing the service (the tables are declared here again)."""
    from sqlalchemy.orm import DeclarativeBase

    from shared.db import TYPE_ANNOTATION_MAP, new_metadata
    from shared.db.engine import Database

    class _Base(DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map = TYPE_ANNOTATION_MAP

    entry = type("Entry", (AuditEntryMixin, _Base), {"__tablename__": entry_table})
    head = type("Head", (AuditHeadMixin, _Base), {"__tablename__": head_table})
    db = Database(url, schema=schema, name="audit-verify")
    try:
        async with db.read_transaction() as session:
            return await AuditTrail(entry, head).verify(session)
    finally:
        await db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import asyncio
    import os
    import sys

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    parser = argparse.ArgumentParser(description="Verify a service's hash-chained audit log.")
    parser.add_argument("action", choices=["verify"])
    parser.add_argument(
        "--url", default=os.environ.get("DATABASE_URL"), required="DATABASE_URL" not in os.environ
    )
    parser.add_argument("--schema", default=os.environ.get("DATABASE_SCHEMA") or None)
    parser.add_argument("--name", default="", help="label printed with the result (the service)")
    args = parser.parse_args(argv)
    label = args.name or make_url(args.url).render_as_string(hide_password=True)
    parsed = make_url(args.url)
    is_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if is_file and not os.path.exists(str(parsed.database)):
        print(json.dumps({"service": label, "skipped": "no database file"}))
        return 0
    try:
        result = asyncio.run(verify_database(args.url, schema=args.schema))
    except DBAPIError as exc:
        print(json.dumps({"service": label, "error": f"{type(exc.orig).__name__}: {str(exc.orig)[:300]}"}))
        return 2
    print(json.dumps({"service": label, **result.__dict__}))
    if not result.ok:
        print(
            f"{label}: audit chain broken at seq {result.first_broken_seq}: {result.reason}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
