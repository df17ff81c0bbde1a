from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, insert, or_, select

from services.ingest.models import Outbox, Post
from shared.db.repository import RepositoryBase
from shared.kafka.outbox import DIRTY_FLAG

POST_TABLE: Table = Post.__table__  # type: ignore[assignment]
OUTBOX_TABLE: Table = Outbox.__table__  # type: ignore[assignment]


class PostRepository(RepositoryBase[Post]):
    model = Post

    async def get_by_external_id(self, *, platform: str, external_id: str) -> Post | None:
        return await self.get_one_or_none(
            self.select().where(Post.platform == platform, Post.external_id == external_id)
        )

    async def existing_ids(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``{(platform, external_id): post id}`` of the keys already stored: one query for a whole group."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        by_platform: dict[str, list[str]] = {}
        for platform, external_id in keys:
            by_platform.setdefault(platform, []).append(external_id)
        condition = or_(
            *(and_(Post.platform == p, Post.external_id.in_(ids)) for p, ids in by_platform.items())
        )
        rows = await self.session.execute(select(Post.platform, Post.external_id, Post.id).where(condition))
        return {(r.platform, r.external_id): r.id for r in rows}

    async def near_duplicate_candidates(
        self, *, keys: Iterable[tuple[str, str]], since: datetime, until: datetime
    ) -> Sequence[tuple[str, str, str, datetime]]:
        """``(author_ref, text_hash, id, created_at)`` of originals (not themselves duplicates) with one of
        the given (author_ref, text_hash) keys created in ``[since, until]``."""
        wanted = set(keys)
        if not wanted:
            return []
        rows = await self.session.execute(
            select(Post.author_ref, Post.text_hash, Post.id, Post.created_at)
            .where(
                Post.text_hash.in_({h for _, h in wanted}),
                Post.created_at >= since,
                Post.created_at <= until,
                Post.duplicate_of.is_(None),
            )
            .order_by(Post.created_at, Post.id)
        )
        return [
            (r.author_ref, r.text_hash, r.id, r.created_at)
            for r in rows
            if (r.author_ref, r.text_hash) in wanted
        ]

    async def insert_many(self, *, posts: list[dict[str, Any]], outbox: list[dict[str, Any]]) -> None:
        """Posts and their outbox rows as two multi-row INSERTs (one round trip each instead of one per ORM
        object: the unit of work was most of a group commit's time). Bypassing ``OutboxWriter.add`` means
        setting its flag ourselves, so that the relay wakes at commit.

        Core inserts on the tables: the ORM's bulk insert of the same dicts first re-collects every row
        against the mapper (a quarter of the insert's CPU), which plain rows do not need."""
        if posts:
            await self.session.execute(insert(POST_TABLE), posts)
        if outbox:
            await self.session.execute(insert(OUTBOX_TABLE), outbox)
            self.session.info[DIRTY_FLAG] = True
