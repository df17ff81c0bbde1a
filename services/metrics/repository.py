"""All of metrics' SQL. Upserts use the dialect's ON CONFLICT: concurrent partitions never lose counts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    Row,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.models import (
    DeadLetter,
    DeadLetterReplay,
    PostDepartment,
    PostEvent,
    PostFact,
    PostLabel,
    TimelinessDay,
    TimelinessDayDirty,
    VolumeBucket,
    VolumeSpike,
)
from shared.db.repository import RepositoryBase

GROUP_COLUMNS = {
    "department": PostFact.department,
    "platform": PostFact.platform,
    "priority": PostFact.priority,
    "responder": PostFact.responder_id,
    "label": PostLabel.label,
}

DURATION_COLUMNS = (
    PostFact.assign_seconds,
    PostFact.first_response_seconds,
    PostFact.resolve_seconds,
    PostFact.assign_business_seconds,
    PostFact.first_response_business_seconds,
    PostFact.resolve_business_seconds,
)

TIMELINESS_COLUMNS = (
    PostFact.received_at,
    PostFact.first_response_at,
    PostFact.assign_seconds,
    PostFact.first_response_seconds,
    PostFact.resolve_seconds,
    PostFact.assign_business_seconds,
    PostFact.first_response_business_seconds,
    PostFact.resolve_business_seconds,
    PostFact.sla_met,
    PostFact.breached_first_response,
    PostFact.breached_resolve,
)


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


#: The consumer's executemany statements, built once per dialect and shape: building an upsert (its
#: ``excluded`` alias above all) for every batch cost more than running it.
_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def _cached(session: AsyncSession, key: tuple[Any, ...], build: Any) -> Any:
    full = (session.get_bind().dialect.name, *key)
    stmt = _STATEMENTS.get(full)
    if stmt is None:
        stmt = _STATEMENTS[full] = build()
    return stmt


async def set_statement_timeout(session: AsyncSession, milliseconds: int) -> None:
    """PostgreSQL cancels a metrics query that runs longer than this (SQLite has no such setting)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"SET LOCAL statement_timeout = {int(milliseconds)}"))


#: Rows per multi-row statement: stays well inside SQLite's bound-parameter limit for wide rows.
CHUNK = 200


def _chunks(rows: Sequence[Any]) -> list[Sequence[Any]]:
    return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]


_INSERT_POST_EVENTS = insert(PostEvent.__table__)  # type: ignore[arg-type]


class PostEventRepository(RepositoryBase[PostEvent]):
    model = PostEvent

    async def existing_ids(self, event_ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(sorted(event_ids)):
            found |= set(
                await self.session.scalars(select(PostEvent.event_id).where(PostEvent.event_id.in_(chunk)))
            )
        return found

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """New events (their ids not stored yet) as one Core executemany: no ORM object or unit-of-work
        flush per event."""
        if rows:
            await self.session.execute(_INSERT_POST_EVENTS, list(rows))

    async def timelines(self, post_ids: Sequence[str]) -> list[Row[tuple[str, str, str, datetime, Any]]]:
        """(post_id, event_id, type, occurred_at, attributes) of these posts' events, each post's in timeline
        order: the columns a fold reads, not ORM objects."""
        out: list[Row[tuple[str, str, str, datetime, Any]]] = []
        for chunk in _chunks(post_ids):
            result = await self.session.execute(
                select(
                    PostEvent.post_id,
                    PostEvent.event_id,
                    PostEvent.type,
                    PostEvent.occurred_at,
                    PostEvent.attributes,
                )
                .where(PostEvent.post_id.in_(chunk))
                .order_by(PostEvent.post_id, PostEvent.occurred_at, PostEvent.recorded_at, PostEvent.event_id)
            )
            out += result.all()
        return out

    async def timeline(self, post_id: str) -> Sequence[PostEvent]:
        return await self.get_all(
            self.select()
            .where(PostEvent.post_id == post_id)
            .order_by(PostEvent.occurred_at, PostEvent.recorded_at, PostEvent.event_id)
        )


class PostFactRepository(RepositoryBase[PostFact]):
    model = PostFact

    async def upsert(self, values: dict[str, Any]) -> None:
        stmt = _insert(self.session, PostFact).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[PostFact.post_id],
            set_={k: stmt.excluded[k] for k in values if k != "post_id"},
        )
        await self.session.execute(stmt)

    async def upsert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or update many facts rows (each with the same keys and a distinct post id).

        One cached statement run with many parameter sets (executemany), not a multi-VALUES statement: that
        one is compiled again for every row count, which cost more than the database work."""
        if not rows:
            return
        keys = tuple(rows[0])

        def build() -> Any:
            stmt = _insert(self.session, PostFact.__table__)
            return stmt.on_conflict_do_update(
                index_elements=[PostFact.post_id],
                set_={k: stmt.excluded[k] for k in keys if k != "post_id"},
            )

        await self.session.execute(_cached(self.session, ("facts", keys), build), list(rows))

    async def replace_labels_many(self, labels: dict[str, Sequence[str]]) -> None:
        for chunk in _chunks(sorted(labels)):
            await self.session.execute(delete(PostLabel).where(PostLabel.post_id.in_(chunk)))
        rows = [{"post_id": p, "label": lb} for p, lbs in labels.items() for lb in lbs]
        if rows:
            stmt = _cached(self.session, ("labels",), lambda: _insert(self.session, PostLabel.__table__))
            await self.session.execute(stmt, rows)

    async def add_departments_many(self, departments: dict[str, Sequence[str]]) -> None:
        rows = [{"post_id": p, "department": d} for p, ds in departments.items() for d in ds]
        if rows:
            stmt = _cached(
                self.session,
                ("departments",),
                lambda: _insert(self.session, PostDepartment.__table__).on_conflict_do_nothing(),
            )
            await self.session.execute(stmt, rows)

    async def replace_labels(self, post_id: str, labels: Sequence[str]) -> None:
        await self.session.execute(delete(PostLabel).where(PostLabel.post_id == post_id))
        if labels:
            await self.session.execute(
                _insert(self.session, PostLabel).values([{"post_id": post_id, "label": lb} for lb in labels])
            )

    async def add_departments(self, post_id: str, departments: Sequence[str]) -> None:
        if departments:
            stmt = _insert(self.session, PostDepartment).values(
                [{"post_id": post_id, "department": d} for d in departments]
            )
            await self.session.execute(stmt.on_conflict_do_nothing())

    async def departments_of(self, post_id: str) -> set[str]:
        rows = await self.session.scalars(
            select(PostDepartment.department).where(PostDepartment.post_id == post_id)
        )
        return set(rows)

    async def timeliness_rows(
        self,
        *,
        start: datetime,
        end: datetime,
        group_by: str,
        departments: Collection[str] | None,
        limit: int,
    ) -> Sequence[Any]:
        """(group key, *TIMELINESS_COLUMNS) of every post received in [start, end), at most ``limit``."""
        group = GROUP_COLUMNS[group_by]
        stmt = select(group, *TIMELINESS_COLUMNS).where(
            PostFact.received_at >= start, PostFact.received_at < end
        )
        if group_by == "label":
            stmt = stmt.join(PostLabel, PostLabel.post_id == PostFact.post_id)
        if departments is not None:
            stmt = stmt.where(PostFact.department.in_(sorted(departments)))
        result = await self.session.execute(stmt.limit(limit))
        return result.all()

    async def timeliness_summary_pg(
        self,
        *,
        start: datetime,
        end: datetime,
        group_by: str,
        departments: Collection[str] | None,
        interval: str,
    ) -> Sequence[Any]:
        """PostgreSQL only: the whole summary in one aggregate query, so only the summary rows travel.

        ``percentile_disc(f)`` is the first value whose cumulative distribution reaches ``f``: exactly the
        nearest-rank percentile of ``services.metrics.stats.percentile``. Columns: group, bucket (UTC, naive),
        posts, answered, then (count, [p50, p90, p99]) per duration, sla_met, sla_determined, breaches.
        """
        group = GROUP_COLUMNS[group_by]
        bucket = func.date_trunc(interval, func.timezone("UTC", PostFact.received_at))
        fractions = postgresql.array([0.5, 0.9, 0.99])
        columns: list[Any] = [group, bucket, func.count(), func.count(PostFact.first_response_at)]
        for col in DURATION_COLUMNS:
            columns.append(func.count(col))
            columns.append(
                func.percentile_disc(fractions).within_group(col.asc()).cast(postgresql.ARRAY(Float))
            )
        columns += [
            func.count().filter(PostFact.sla_met.is_(True)),
            func.count().filter(PostFact.sla_met.is_not(None)),
            func.count().filter(or_(PostFact.breached_first_response, PostFact.breached_resolve)),
        ]
        stmt = (
            select(*columns)
            .where(PostFact.received_at >= start, PostFact.received_at < end)
            .group_by(group, bucket)
            .order_by(bucket, group)
        )
        if group_by == "label":
            stmt = stmt.join(PostLabel, PostLabel.post_id == PostFact.post_id)
        if departments is not None:
            stmt = stmt.where(PostFact.department.in_(sorted(departments)))
        rows: Sequence[Any] = (await self.session.execute(stmt)).all()
        return rows

    async def backlog(self, *, departments: Collection[str] | None, now: datetime) -> Sequence[Any]:
        """Per (department, queue): waiting, oldest waiting since, open, responders holding work, at risk."""
        open_ = PostFact.status.in_(("waiting", "offered", "assigned", "awaiting_public"))
        stmt = (
            select(
                PostFact.department,
                PostFact.queue,
                func.sum(case((PostFact.status == "waiting", 1), else_=0)),
                func.min(case((PostFact.status == "waiting", PostFact.waiting_since), else_=None)),
                func.count(),
                func.count(func.distinct(PostFact.responder_id)),
                func.sum(case((PostFact.at_risk, 1), else_=0)),
                func.sum(
                    case(
                        (
                            or_(
                                and_(
                                    PostFact.first_response_at.is_(None),
                                    PostFact.first_response_due_at < now,
                                ),
                                PostFact.resolve_due_at < now,
                            ),
                            1,
                        ),
                        else_=0,
                    )
                ),
            )
            .where(open_)
            .group_by(PostFact.department, PostFact.queue)
            .order_by(PostFact.department, PostFact.queue)
        )
        if departments is not None:
            stmt = stmt.where(PostFact.department.in_(sorted(departments)))
        rows: Sequence[Any] = (await self.session.execute(stmt)).all()
        return rows


class RollupRepository(RepositoryBase[TimelinessDay]):
    model = TimelinessDay

    async def fact_cell(self, post_id: str) -> tuple[str | None, datetime | None] | None:
        row = (
            await self.session.execute(
                select(PostFact.department, PostFact.received_at).where(PostFact.post_id == post_id)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def fact_cells(self, post_ids: Sequence[str]) -> dict[str, tuple[str | None, datetime | None]]:
        out: dict[str, tuple[str | None, datetime | None]] = {}
        for chunk in _chunks(post_ids):
            rows = await self.session.execute(
                select(PostFact.post_id, PostFact.department, PostFact.received_at).where(
                    PostFact.post_id.in_(chunk)
                )
            )
            out.update({p: (d, r) for p, d, r in rows})
        return out

    async def mark_dirty_many(self, cells: Collection[tuple[str, datetime]]) -> None:
        """Mark (department, day) rollup cells stale."""
        rows = [{"department": d, "day": day, "version": 1} for d, day in sorted(set(cells))]
        if not rows:
            return
        stmt = _cached(
            self.session,
            ("dirty",),
            lambda: _insert(self.session, TimelinessDayDirty.__table__).on_conflict_do_update(
                index_elements=[TimelinessDayDirty.department, TimelinessDayDirty.day],
                set_={"version": TimelinessDayDirty.version + 1},
            ),
        )
        await self.session.execute(stmt, rows)

    async def mark_dirty(self, *, department: str, day: datetime) -> None:
        stmt = _insert(self.session, TimelinessDayDirty).values(department=department, day=day, version=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[TimelinessDayDirty.department, TimelinessDayDirty.day],
            set_={"version": TimelinessDayDirty.version + 1},
        )
        await self.session.execute(stmt)

    async def dirty_cells(self, limit: int) -> Sequence[Any]:
        stmt = (
            select(TimelinessDayDirty.department, TimelinessDayDirty.day, TimelinessDayDirty.version)
            .order_by(TimelinessDayDirty.day, TimelinessDayDirty.department)
            .limit(limit)
        )
        rows: Sequence[Any] = (await self.session.execute(stmt)).all()
        return rows

    async def dirty_days(
        self, *, start: datetime, end: datetime, departments: Collection[str] | None
    ) -> set[datetime]:
        stmt = select(TimelinessDayDirty.day).where(
            TimelinessDayDirty.day >= start, TimelinessDayDirty.day < end
        )
        if departments is not None:
            stmt = stmt.where(TimelinessDayDirty.department.in_(sorted(departments)))
        return set((await self.session.scalars(stmt.distinct())).all())

    async def clear_dirty(self, *, department: str, day: datetime, version: int) -> None:
        # Only the marks this recompute saw: an event that marked the cell meanwhile keeps it dirty.
        await self.session.execute(
            delete(TimelinessDayDirty).where(
                TimelinessDayDirty.department == department,
                TimelinessDayDirty.day == day,
                TimelinessDayDirty.version == version,
            )
        )

    async def put(self, *, department: str, day: datetime, summary: dict[str, Any] | None) -> None:
        await self.session.execute(
            delete(TimelinessDay).where(TimelinessDay.department == department, TimelinessDay.day == day)
        )
        if summary is not None:
            await self.session.execute(
                _insert(self.session, TimelinessDay).values(department=department, day=day, summary=summary)
            )

    async def cells_and_dirty_days(
        self, *, start: datetime, end: datetime, departments: Collection[str] | None
    ) -> tuple[list[tuple[str, datetime, dict[str, Any]]], set[datetime]]:
        """The window's rollup cells and its days with a pending change, in one round trip."""
        cells = select(
            TimelinessDay.department, TimelinessDay.day, TimelinessDay.summary, literal(False).label("dirty")
        ).where(TimelinessDay.day >= start, TimelinessDay.day < end)
        dirty = select(
            TimelinessDayDirty.department,
            TimelinessDayDirty.day,
            cast(null(), JSON),
            literal(True),
        ).where(TimelinessDayDirty.day >= start, TimelinessDayDirty.day < end)
        if departments is not None:
            cells = cells.where(TimelinessDay.department.in_(sorted(departments)))
            dirty = dirty.where(TimelinessDayDirty.department.in_(sorted(departments)))
        rows = (await self.session.execute(union_all(cells, dirty))).all()
        dirty_days = {row[1] for row in rows if row[3]}
        return [(r[0], r[1], r[2]) for r in rows if not r[3] and r[1] not in dirty_days], dirty_days


class VolumeRepository(RepositoryBase[VolumeBucket]):
    model = VolumeBucket

    async def increment(self, *, kind: str, key: str, bucket_start: datetime, by: int = 1) -> int:
        """Add ``by`` posts to the bucket and return its new count."""
        stmt = _insert(self.session, VolumeBucket).values(
            kind=kind, key=key, bucket_start=bucket_start, count=by
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[VolumeBucket.kind, VolumeBucket.key, VolumeBucket.bucket_start],
            set_={"count": VolumeBucket.count + by},
        ).returning(VolumeBucket.count)
        return int((await self.session.execute(stmt)).scalar_one())

    async def counts(
        self, *, kind: str, key: str | None, keys: Collection[str] | None, start: datetime, end: datetime
    ) -> Sequence[Any]:
        stmt = (
            select(VolumeBucket.key, VolumeBucket.bucket_start, VolumeBucket.count)
            .where(
                VolumeBucket.kind == kind,
                VolumeBucket.bucket_start >= start,
                VolumeBucket.bucket_start < end,
            )
            .order_by(VolumeBucket.key, VolumeBucket.bucket_start)
        )
        if key is not None:
            stmt = stmt.where(VolumeBucket.key == key)
        if keys is not None:
            stmt = stmt.where(VolumeBucket.key.in_(sorted(keys)))
        return (await self.session.execute(stmt)).all()

    async def spike_exists(self, *, kind: str, key: str, bucket_start: datetime) -> bool:
        found = await self.session.scalar(
            select(VolumeSpike.id).where(
                VolumeSpike.kind == kind, VolumeSpike.key == key, VolumeSpike.bucket_start == bucket_start
            )
        )
        return found is not None

    async def add_spike(self, spike: VolumeSpike) -> None:
        self.session.add(spike)
        await self.session.flush()

    async def spikes(
        self,
        *,
        start: datetime,
        end: datetime,
        kind: str | None,
        departments: Collection[str] | None,
        limit: int,
    ) -> Sequence[VolumeSpike]:
        stmt = (
            select(VolumeSpike)
            .where(VolumeSpike.bucket_start >= start, VolumeSpike.bucket_start < end)
            .order_by(VolumeSpike.bucket_start.desc(), VolumeSpike.id)
            .limit(limit)
        )
        if kind is not None:
            stmt = stmt.where(VolumeSpike.kind == kind)
        if departments is not None:
            # A supervisor sees their departments' spikes and every hashtag's (hashtags are public topics).
            stmt = stmt.where(or_(VolumeSpike.kind == "hashtag", VolumeSpike.key.in_(sorted(departments))))
        return (await self.session.scalars(stmt)).all()


class DeadLetterRepository(RepositoryBase[DeadLetter]):
    model = DeadLetter

    async def add_if_new(self, values: dict[str, Any]) -> bool:
        stmt = _insert(self.session, DeadLetter).values(**values).on_conflict_do_nothing()
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def page(
        self, *, after_id: int | None, limit: int, consumer_group: str | None
    ) -> Sequence[DeadLetter]:
        stmt = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
        if after_id is not None:
            stmt = stmt.where(DeadLetter.id < after_id)
        if consumer_group is not None:
            stmt = stmt.where(DeadLetter.consumer_group == consumer_group)
        return (await self.session.scalars(stmt)).all()

    async def counts_by_group(self) -> Sequence[Any]:
        stmt = (
            select(DeadLetter.consumer_group, DeadLetter.original_topic, func.count())
            .group_by(DeadLetter.consumer_group, DeadLetter.original_topic)
            .order_by(DeadLetter.consumer_group, DeadLetter.original_topic)
        )
        return (await self.session.execute(stmt)).all()

    async def record_replay(self, *, dead_letter: DeadLetter, actor: str, reason: str, now: datetime) -> int:
        """Audit one replay; returns the dead letter's replay count (incremented in SQL: replays may race)."""
        self.session.add(
            DeadLetterReplay(dead_letter_id=dead_letter.id, actor=actor, reason=reason, replayed_at=now)
        )
        count = await self.session.scalar(
            update(DeadLetter)
            .where(DeadLetter.id == dead_letter.id)
            .values(replay_count=DeadLetter.replay_count + 1)
            .returning(DeadLetter.replay_count)
        )
        await self.session.flush()
        return int(count or 0)

    async def replays(self, dead_letter_id: int) -> Sequence[DeadLetterReplay]:
        stmt = (
            select(DeadLetterReplay)
            .where(DeadLetterReplay.dead_letter_id == dead_letter_id)
            .order_by(DeadLetterReplay.id)
        )
        return (await self.session.scalars(stmt)).all()
