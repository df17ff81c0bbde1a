from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from services.metrics.repository import PostEventRepository
from services.metrics.schemas import Timeline, TimelineEntry
from shared.auth import Principal, Role, authenticated, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound, problem_responses

# Every /v1 route needs a valid bearer token, checked before anything else runs.
router = APIRouter(
    prefix="/v1",
    tags=["timeliness"],
    responses=problem_responses(401, 403),
    dependencies=[Depends(authenticated)],
)

Reader = Annotated[Principal, Depends(require_roles(Role.OPS, Role.SUPERVISOR))]


@router.get(
    "/posts/{post_id}/timeline",
    response_model=Timeline,
    summary="Every event of one post, in order",
    responses=problem_responses(404),
)
async def get_timeline(post_id: str, session: SessionDep, _principal: Reader) -> Timeline:
    events = await PostEventRepository(session).timeline(post_id)
    if not events:
        raise NotFound(f"No events for post {post_id!r}.")
    return Timeline(post_id=post_id, events=[TimelineEntry.model_validate(e) for e in events])
