from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Table, func, insert, select

from services.policy.models import Check, ModeChange, PolicyActivation, PolicyPackVersion, Screening
from shared.db.repository import RepositoryBase

_SCREENING: Table = Screening.__table__  # type: ignore[assignment]
_INSERT_SCREENINGS = insert(_SCREENING)


class ScreeningRepository(RepositoryBase[Screening]):
    model = Screening

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """A consumer batch's screenings as one Core executemany (keys: the table's columns): no ORM object
        or unit-of-work flush per row; nothing reads them back in the same transaction."""
        if rows:
            await self.session.execute(_INSERT_SCREENINGS, list(rows))

    async def get_by_post_id(self, post_id: str) -> Screening | None:
        return await self.get_one_or_none(self.select().where(Screening.post_id == post_id))

    async def screened_post_ids(self, post_ids: Collection[str]) -> set[str]:
        if not post_ids:
            return set()
        stmt = select(Screening.post_id).where(Screening.post_id.in_(post_ids))
        return set((await self.session.execute(stmt)).scalars())

    async def labels_of_post(self, post_id: str) -> list[str] | None:
        result = await self.session.execute(select(Screening.labels).where(Screening.post_id == post_id))
        labels = result.scalar_one_or_none()
        return list(labels) if labels is not None else None


class PackRepository(RepositoryBase[PolicyPackVersion]):
    model = PolicyPackVersion

    async def list_all(self, *, limit: int) -> Sequence[PolicyPackVersion]:
        return await self.get_all(self.select().order_by(PolicyPackVersion.created_at.desc()).limit(limit))


class ActivationRepository(RepositoryBase[PolicyActivation]):
    model = PolicyActivation

    async def latest(self) -> PolicyActivation | None:
        return await self.get_one_or_none(self.select().order_by(PolicyActivation.id.desc()).limit(1))


class ModeRepository(RepositoryBase[ModeChange]):
    model = ModeChange

    async def current(self) -> Sequence[ModeChange]:
        """The latest change of each (mode, jurisdiction)."""
        latest = (
            select(func.max(ModeChange.id))
            .group_by(ModeChange.mode, ModeChange.jurisdiction)
            .scalar_subquery()
        )
        return await self.get_all(self.select().where(ModeChange.id.in_(latest)).order_by(ModeChange.id))

    async def history(self, *, limit: int) -> Sequence[ModeChange]:
        return await self.get_all(self.select().order_by(ModeChange.id.desc()).limit(limit))


class CheckRepository(RepositoryBase[Check]):
    model = Check
