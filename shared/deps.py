"""FastAPI dependency aliases shared by every service's endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

READ_METHODS = frozenset({"GET", "HEAD"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the endpoint returns, before the response is sent.

    GET and HEAD get a read-only session that never queues behind writers (SQLite has one writer)."""
    db = request.app.state.runtime.database
    unit_of_work = db.read_transaction() if request.method in READ_METHODS else db.transaction()
    async with unit_of_work as session:
        yield session


# scope="function": the transaction ends (commits) before the response goes out, so a 2xx means durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
