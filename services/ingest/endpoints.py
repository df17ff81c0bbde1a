from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from services.ingest import service
from services.ingest.repository import PostRepository
from services.ingest.schemas import PostAccepted, PostCreate, PostRead
from shared.auth import Principal, Role, authenticated, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound, problem_responses

# Every /v1 route needs a valid bearer token, checked before anything else runs.
router = APIRouter(
    prefix="/v1",
    tags=["posts"],
    responses=problem_responses(401, 403, 413, 422),
    dependencies=[Depends(authenticated)],
)

AgencySystem = Annotated[Principal, Depends(require_roles(Role.AGENCY_SYSTEM))]
Reader = Annotated[Principal, Depends(require_roles(Role.AGENCY_SYSTEM, Role.SUPERVISOR, Role.OPS))]


@router.post(
    "/posts",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PostAccepted,
    summary="Accept one canonical post",
    description="Stores the post and its posts.received.v1 event in one transaction, then answers 202. "
    "Sending the same (platform, external_id) again answers with the same id and duplicate=true.",
)
async def create_post(
    data: PostCreate, request: Request, session: SessionDep, _principal: AgencySystem
) -> PostAccepted:
    runtime = request.app.state.runtime
    post_id, duplicate = await service.accept_post(
        session=session,
        outbox=runtime.outbox,
        data=data,
        secret=request.app.state.settings.author_ref_secret.get_secret_value().encode(),
        now=datetime.now(UTC),
    )
    return PostAccepted(id=post_id, duplicate=duplicate)


@router.get(
    "/posts/{post_id}",
    response_model=PostRead,
    summary="Read one stored post",
    responses=problem_responses(404),
)
async def get_post(post_id: str, session: SessionDep, _principal: Reader) -> PostRead:
    post = await PostRepository(session).get(post_id)
    if post is None:
        raise NotFound(f"No post with id {post_id!r}.")
    return PostRead.model_validate(post)
