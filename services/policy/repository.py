from __future__ import annotations

from services.policy.models import Screening
from shared.db.repository import RepositoryBase


class ScreeningRepository(RepositoryBase[Screening]):
    model = Screening

    async def get_by_post_id(self, post_id: str) -> Screening | None:
        return await self.get_one_or_none(self.select().where(Screening.post_id == post_id))
