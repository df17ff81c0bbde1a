"""The group committer against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from services.ingest.group_commit import GroupCommitter
from services.ingest.main import MIGRATIONS
from services.ingest.schemas import PostCreate
from services.ingest.service import CanonicalPost, canonicalise
from shared.db.engine import Database
from shared.db.migrations import upgrade_to_head
from shared.errors import Unavailable
from tests.conftest import DatabaseTarget
from tests.ingest.conftest import NOW, SECRET


def make_post(n: int, **overrides: Any) -> CanonicalPost:
    data = PostCreate.model_validate(
        {
            "platform": "webform",
            "external_id": f"g{n}",
            "account": "contact",
            "text": f"Question number {n} about the library",
            "author": {"id": f"author-{n}"},
            "created_at": "2026-11-26T09:00:00+11:00",
            **overrides,
        }
    )
    return canonicalise(data=data, secret=SECRET, now=NOW)


@pytest.fixture
async def committer(
    db_factory: Callable[[str], DatabaseTarget],
) -> AsyncIterator[tuple[GroupCommitter, list[int]]]:
    target = db_factory("ingest")
    db = Database(target.url, schema=target.schema, name="ingest-test")
    await upgrade_to_head(db, MIGRATIONS)
    commits: list[int] = []
    db.on_commit(lambda _info: commits.append(1))
    gc = GroupCommitter(db=db, window=timedelta(hours=1))
    gc.start()
    try:
        yield gc, commits
    finally:
        await gc.stop()
        await db.dispose()


async def test_concurrent_requests_share_transactions(committer: tuple[GroupCommitter, list[int]]) -> None:
    gc, commits = committer
    outcomes = await asyncio.gather(*(gc.submit([make_post(n)]) for n in range(100)))
    assert [o[0].duplicate for o in outcomes] == [False] * 100
    # The first request commits alone; the others queue behind it and share the following commits.
    assert len(commits) < 50, len(commits)


async def test_a_request_the_database_refuses_fails_alone(
    committer: tuple[GroupCommitter, list[int]],
) -> None:
    gc, _ = committer
    # A naive timestamp is refused when bound; canonicalise never makes one, so it stands for any row the
    # database would refuse.
    bad = dataclasses.replace(make_post(1), created_at=make_post(1).created_at.replace(tzinfo=None))
    results = await asyncio.gather(
        gc.submit([make_post(2)]), gc.submit([bad]), gc.submit([make_post(3)]), return_exceptions=True
    )
    assert isinstance(results[1], Unavailable)
    for ok in (results[0], results[2]):
        assert isinstance(ok, list)
        assert ok[0].duplicate is False


async def test_near_duplicates_within_one_group_point_at_the_first(
    committer: tuple[GroupCommitter, list[int]],
) -> None:
    gc, _ = committer
    same = {"author": {"id": "flooder"}, "text": "Fix the road NOW"}
    first, copy, other_author = await gc.submit(
        [make_post(1, **same), make_post(2, **same), make_post(3, text="Fix the road NOW")]
    )
    assert first.duplicate_of is None
    assert copy.duplicate_of == first.id
    assert other_author.duplicate_of is None
