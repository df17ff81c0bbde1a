from __future__ import annotations

from collections.abc import Sequence

from services.metrics.models import PostEvent
from shared.db.repository import RepositoryBase


class PostEventRepository(RepositoryBase[PostEvent]):
    model = PostEvent

    async def timeline(self, post_id: str) -> Sequence[PostEvent]:
        return await self.get_all(
            self.select()
            .where(PostEvent.post_id == post_id)
            .order_by(PostEvent.occurred_at, PostEvent.recorded_at, PostEvent.event_id)
        )
