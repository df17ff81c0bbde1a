from __future__ import annotations

from services.ingest.models import Post
from shared.db.repository import RepositoryBase


class PostRepository(RepositoryBase[Post]):
    model = Post

    async def get_by_external_id(self, *, platform: str, external_id: str) -> Post | None:
        return await self.get_one_or_none(
            self.select().where(Post.platform == platform, Post.external_id == external_id)
        )
