"""FastAPI dependency aliases shared by every service's endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the endpoint returns, before the response is sent."""
    async with request.app.state.runtime.database.transaction() as session:
        yield session


# scope="function": the transaction ends (commits) before the response goes out, so a 2xx means durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
