from __future__ import annotations

from services.routing.models import Assignment
from shared.db.repository import RepositoryBase


class AssignmentRepository(RepositoryBase[Assignment]):
    model = Assignment

    async def get_by_post_id(self, post_id: str) -> Assignment | None:
        return await self.get_one_or_none(self.select().where(Assignment.post_id == post_id))
