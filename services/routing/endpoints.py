from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from services.routing.repository import AssignmentRepository
from services.routing.schemas import AssignmentRead
from shared.auth import Principal, Role, authenticated, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound, problem_responses

# Every /v1 route needs a valid bearer token, checked before anything else runs.
router = APIRouter(
    prefix="/v1",
    tags=["assignments"],
    responses=problem_responses(401, 403),
    dependencies=[Depends(authenticated)],
)

Reader = Annotated[Principal, Depends(require_roles(Role.RESPONDER, Role.SUPERVISOR, Role.OPS))]


@router.get(
    "/assignments/{assignment_id}",
    response_model=AssignmentRead,
    summary="One assignment (only within the caller's departments)",
    responses=problem_responses(404),
)
async def get_assignment(assignment_id: str, session: SessionDep, principal: Reader) -> AssignmentRead:
    assignment = await AssignmentRepository(session).get(assignment_id)
    # Another department's assignment is reported as absent, not forbidden: no existence oracle.
    if assignment is None or not principal.can_see_department(assignment.department):
        raise NotFound(f"No assignment with id {assignment_id!r}.")
    return AssignmentRead.model_validate(assignment)
