from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from services.policy.repository import ScreeningRepository
from services.policy.schemas import ScreeningRead
from shared.auth import Principal, Role, authenticated, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound, problem_responses

# Every /v1 route needs a valid bearer token, checked before anything else runs.
router = APIRouter(
    prefix="/v1",
    tags=["screenings"],
    responses=problem_responses(401, 403),
    dependencies=[Depends(authenticated)],
)

Reader = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.RESPONDER, Role.OPS))]


@router.get(
    "/screenings/{post_id}",
    response_model=ScreeningRead,
    summary="The stored screening of one inbound post",
    responses=problem_responses(404),
)
async def get_screening(post_id: str, session: SessionDep, _principal: Reader) -> ScreeningRead:
    screening = await ScreeningRepository(session).get_by_post_id(post_id)
    if screening is None:
        raise NotFound(f"No screening for post {post_id!r}.")
    return ScreeningRead.model_validate(screening)
