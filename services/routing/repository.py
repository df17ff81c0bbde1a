"""All of routing's SQL. Row locks (``FOR UPDATE SKIP LOCKED``) apply on PostgreSQL; SQLite has one writer
(BEGIN IMMEDIATE) so its transactions are serial anyway and the dialect drops the clause."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, false, func, insert, or_, select

from services.routing.decisions import HOLDING
from services.routing.models import (
    Approval,
    Assignment,
    Decision,
    Department,
    NewAssignment,
    PostContext,
    Queue,
    Reply,
    Responder,
    ResponderDepartment,
    RuleSetRow,
    SlaPolicy,
)
from shared.db.repository import RepositoryBase
from shared.kafka.outbox import insert_at_commit


class DepartmentRepository(RepositoryBase[Department]):
    model = Department

    async def list(
        self, *, after: str | None, limit: int, departments: Collection[str] | None = None
    ) -> Sequence[Department]:
        """``departments``: only these (None: all)."""
        stmt = self.select().order_by(Department.id).limit(limit)
        if departments is not None:
            stmt = stmt.where(Department.id.in_(list(departments)))
        if after:
            stmt = stmt.where(Department.id > after)
        return await self.get_all(stmt)

    async def get_many(self, ids: Collection[str]) -> dict[str, Department]:
        if not ids:
            return {}
        rows = await self.get_all(self.select().where(Department.id.in_(ids)))
        return {d.id: d for d in rows}


class SlaPolicyRepository(RepositoryBase[SlaPolicy]):
    model = SlaPolicy

    async def list(self, *, limit: int) -> Sequence[SlaPolicy]:
        return await self.get_all(self.select().order_by(SlaPolicy.name).limit(limit))

    async def get_many(self, names: Collection[str]) -> dict[str, SlaPolicy]:
        if not names:
            return {}
        rows = await self.get_all(self.select().where(SlaPolicy.name.in_(names)))
        return {p.name: p for p in rows}


class QueueRepository(RepositoryBase[Queue]):
    model = Queue

    async def list(
        self,
        *,
        department: str | None,
        after: str | None,
        limit: int,
        departments: Collection[str] | None = None,
    ) -> Sequence[Queue]:
        """``departments``: only queues of these (None: all)."""
        stmt = self.select().order_by(Queue.id).limit(limit)
        if departments is not None:
            stmt = stmt.where(Queue.department.in_(list(departments)))
        if department:
            stmt = stmt.where(Queue.department == department)
        if after:
            stmt = stmt.where(Queue.id > after)
        return await self.get_all(stmt)

    async def get_many(self, ids: Collection[str]) -> dict[str, Queue]:
        if not ids:
            return {}
        return {q.id: q for q in await self.get_all(self.select().where(Queue.id.in_(ids)))}


class ResponderRepository(RepositoryBase[Responder]):
    model = Responder

    async def departments_of(self, responder_ids: Collection[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {r: set() for r in responder_ids}
        if not responder_ids:
            return out
        rows = await self.session.execute(
            select(ResponderDepartment.responder_id, ResponderDepartment.department).where(
                ResponderDepartment.responder_id.in_(responder_ids)
            )
        )
        for rid, dept in rows:
            out[rid].add(dept)
        return out

    async def set_departments(self, responder_id: str, departments: Collection[str]) -> None:
        await self.session.execute(
            delete(ResponderDepartment).where(ResponderDepartment.responder_id == responder_id)
        )
        self.session.add_all(
            ResponderDepartment(responder_id=responder_id, department=d) for d in departments
        )
        await self.session.flush()

    async def list(self, *, department: str | None, after: str | None, limit: int) -> Sequence[Responder]:
        stmt = self.select().order_by(Responder.id).limit(limit)
        if department:
            stmt = stmt.where(
                Responder.id.in_(
                    select(ResponderDepartment.responder_id).where(
                        ResponderDepartment.department == department
                    )
                )
            )
        if after:
            stmt = stmt.where(Responder.id > after)
        return await self.get_all(stmt)

    async def in_departments(self, departments: Collection[str]) -> Sequence[Responder]:
        sub = select(ResponderDepartment.responder_id).where(ResponderDepartment.department.in_(departments))
        return await self.get_all(self.select().where(Responder.id.in_(sub)).order_by(Responder.id))

    async def lock_available(self, ids: Collection[str]) -> set[str]:
        """Lock the available responders among ``ids`` that no other transaction is offering work to now.

        SKIP LOCKED: a responder locked by a concurrent drain is simply not a candidate this time, so two
        routing consumers never wait on each other and never both count the same spare capacity.
        """
        if not ids:
            return set()
        stmt = (
            select(Responder.id)
            .where(Responder.id.in_(ids), Responder.status == "available")
            .order_by(Responder.id)
            .with_for_update(skip_locked=True)
        )
        return set((await self.session.execute(stmt)).scalars())

    async def loads(self, ids: Collection[str]) -> dict[str, int]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Assignment.responder_id, func.count())
            .where(Assignment.responder_id.in_(ids), Assignment.status.in_(HOLDING))
            .group_by(Assignment.responder_id)
        )
        return {rid: int(n) for rid, n in rows if rid is not None}


class RuleSetRepository(RepositoryBase[RuleSetRow]):
    model = RuleSetRow

    async def active(self) -> RuleSetRow | None:
        return await self.get_one_or_none(
            self.select().where(RuleSetRow.active.is_(True)).order_by(RuleSetRow.version.desc()).limit(1)
        )

    async def active_version(self) -> int | None:
        stmt = (
            select(RuleSetRow.version).where(RuleSetRow.active.is_(True)).order_by(RuleSetRow.version.desc())
        )
        return (await self.session.execute(stmt.limit(1))).scalar_one_or_none()

    async def next_version(self) -> int:
        current = (await self.session.execute(select(func.max(RuleSetRow.version)))).scalar_one_or_none()
        return (current or 0) + 1

    async def list(self, *, limit: int) -> Sequence[RuleSetRow]:
        return await self.get_all(self.select().order_by(RuleSetRow.version.desc()).limit(limit))

    async def deactivate_all(self) -> None:
        for row in await self.get_all(self.select().where(RuleSetRow.active.is_(True))):
            row.active = False
        await self.session.flush()


_INSERT_POST_CONTEXTS = insert(PostContext.__table__)  # type: ignore[arg-type]


class PostContextRepository(RepositoryBase[PostContext]):
    model = PostContext

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(_INSERT_POST_CONTEXTS, list(rows))

    async def get_many(self, post_ids: Collection[str]) -> dict[str, PostContext]:
        if not post_ids:
            return {}
        rows = await self.get_all(self.select().where(PostContext.post_id.in_(post_ids)))
        return {c.post_id: c for c in rows}

    async def existing(self, post_ids: Collection[str]) -> set[str]:
        if not post_ids:
            return set()
        stmt = select(PostContext.post_id).where(PostContext.post_id.in_(post_ids))
        return set((await self.session.execute(stmt)).scalars())


_INSERT_ASSIGNMENTS = insert(Assignment.__table__)  # type: ignore[arg-type]


class AssignmentRepository(RepositoryBase[Assignment]):
    model = Assignment

    async def insert_new(self, assignments: Sequence[NewAssignment]) -> None:
        """Rows of assignments routed in this transaction, as one Core executemany (no ORM objects)."""
        if assignments:
            await self.session.execute(_INSERT_ASSIGNMENTS, [a.row() for a in assignments])

    async def get_by_post_id(self, post_id: str) -> Assignment | None:
        return await self.get_one_or_none(self.select().where(Assignment.post_id == post_id))

    async def by_post_ids(self, post_ids: Collection[str]) -> dict[str, Assignment]:
        if not post_ids:
            return {}
        rows = await self.get_all(self.select().where(Assignment.post_id.in_(post_ids)))
        return {a.post_id: a for a in rows}

    async def get_for_update(self, assignment_id: str) -> Assignment | None:
        return await self.get_one_or_none(
            self.select().where(Assignment.id == assignment_id).with_for_update()
        )

    async def lock_waiting(self, departments: Collection[str], *, limit: int) -> Sequence[Assignment]:
        """The head of the departments' queues, priority then age, skipping rows another drain holds."""
        stmt = (
            self.select()
            .where(Assignment.status == "waiting", Assignment.department.in_(departments))
            .order_by(Assignment.priority, Assignment.waiting_since, Assignment.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self.get_all(stmt)

    async def continuity(
        self, author_refs: Collection[str], conversations: Collection[str]
    ) -> dict[str, set[str]]:
        """author_ref / conversation id -> responders who held earlier posts of it."""
        out: dict[str, set[str]] = {}
        if not author_refs and not conversations:
            return out
        stmt = select(Assignment.author_ref, Assignment.conversation_id, Assignment.responder_id).where(
            Assignment.responder_id.is_not(None),
            or_(Assignment.author_ref.in_(author_refs), Assignment.conversation_id.in_(conversations)),
        )
        for author, conv, rid in (await self.session.execute(stmt.limit(5000))).all():
            if rid is None:
                continue
            if author in author_refs:
                out.setdefault(author, set()).add(rid)
            if conv is not None and conv in conversations:
                out.setdefault(conv, set()).add(rid)
        return out

    async def awaiting_public_among(
        self, author_refs: Collection[str], conversations: Collection[str]
    ) -> Sequence[Assignment]:
        """Assignments waiting for the public's answer from any of these authors or conversations (locked)."""
        if not author_refs and not conversations:
            return []
        stmt = self.select().where(
            Assignment.status == "awaiting_public",
            or_(Assignment.author_ref.in_(author_refs), Assignment.conversation_id.in_(conversations)),
        )
        return await self.get_all(stmt.order_by(Assignment.created_at.desc()).with_for_update())

    async def expired_offers(self, *, now: datetime, limit: int) -> Sequence[Assignment]:
        stmt = (
            self.select()
            .where(Assignment.status == "offered", Assignment.offer_expires_at <= now)
            .order_by(Assignment.offer_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self.get_all(stmt)

    async def due_timers(self, *, now: datetime, limit: int) -> Sequence[Assignment]:
        """Open assignments with an SLA warning or breach due and not yet fired."""
        stmt = (
            self.select()
            .where(
                Assignment.status.in_(("waiting", "offered", "assigned")),
                # One indexed condition each (flag, time): `= false`, which an index serves, not `IS false`.
                or_(
                    (Assignment.fr_warned == false()) & (Assignment.fr_warn_at <= now),
                    (Assignment.fr_breached == false()) & (Assignment.fr_due_at <= now),
                    (Assignment.rs_warned == false()) & (Assignment.rs_warn_at <= now),
                    (Assignment.rs_breached == false()) & (Assignment.rs_due_at <= now),
                ),
            )
            .order_by(Assignment.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self.get_all(stmt)

    async def grouped_children(self, assignment_id: str) -> Sequence[Assignment]:
        return await self.get_all(
            self.select().where(Assignment.grouped_with == assignment_id, Assignment.status == "grouped")
        )

    async def open_of_responder(self, responder_id: str, *, limit: int) -> Sequence[Assignment]:
        stmt = (
            self.select()
            .where(Assignment.responder_id == responder_id, Assignment.status.in_(HOLDING))
            .order_by(Assignment.priority, Assignment.created_at)
            .limit(limit)
        )
        return await self.get_all(stmt)

    async def waiting_in(self, departments: Collection[str], *, limit: int) -> Sequence[Assignment]:
        stmt = (
            self.select()
            .where(Assignment.status == "waiting", Assignment.department.in_(departments))
            .order_by(Assignment.priority, Assignment.waiting_since, Assignment.id)
            .limit(limit)
        )
        return await self.get_all(stmt)

    async def count_holding(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(Assignment.responder_id, func.count())
            .where(Assignment.status.in_(HOLDING))
            .group_by(Assignment.responder_id)
        )
        return {rid: int(n) for rid, n in rows if rid is not None}


_DECISION: Table = Decision.__table__  # type: ignore[assignment]


class DecisionRepository(RepositoryBase[Decision]):
    model = Decision

    def add_at_commit(
        self, *, id: str, assignment_id: str, kind: str, explanation: dict[str, Any], created_at: datetime
    ) -> None:
        """Written when the transaction commits, with its other decisions as one Core executemany: nothing
        reads a decision back in the transaction that makes it, and an ORM object and a unit-of-work flush
        per decision cost more than routing the post."""
        insert_at_commit(
            self.session,
            _DECISION,
            {
                "id": id,
                "assignment_id": assignment_id,
                "kind": kind,
                "explanation": explanation,
                "created_at": created_at,
            },
        )

    async def of_assignment(self, assignment_id: str, *, limit: int) -> Sequence[Decision]:
        stmt = (
            self.select()
            .where(Decision.assignment_id == assignment_id)
            .order_by(Decision.created_at, Decision.id)
            .limit(limit)
        )
        return await self.get_all(stmt)


class ReplyRepository(RepositoryBase[Reply]):
    model = Reply

    async def published_count(self, assignment_id: str) -> int:
        stmt = select(func.count()).where(Reply.assignment_id == assignment_id, Reply.status == "published")
        return int((await self.session.execute(stmt)).scalar_one())


class ApprovalRepository(RepositoryBase[Approval]):
    model = Approval

    async def pending(
        self, departments: Collection[str] | None, *, after: str | None, limit: int
    ) -> Sequence[Approval]:
        stmt = self.select().where(Approval.status == "pending").order_by(Approval.id).limit(limit)
        if departments is not None:
            stmt = stmt.where(Approval.department.in_(departments))
        if after:
            stmt = stmt.where(Approval.id > after)
        return await self.get_all(stmt)

    async def get_for_update(self, approval_id: str) -> Approval | None:
        return await self.get_one_or_none(self.select().where(Approval.id == approval_id).with_for_update())
