"""Assigning screened posts: decide, store the assignment, emit assignment.created in one transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.models import Assignment
from services.routing.repository import AssignmentRepository
from services.routing.rules import PostFacts, Target, compile_ruleset
from shared.contracts import AssignmentCreatedV1, PostScreenedV1, new_event
from shared.contracts.envelope import Envelope
from shared.ids import uuid7

SOURCE = "/switchboard/routing"


async def assign_post(
    *,
    session: AsyncSession,
    post: PostScreenedV1,
    default_department: str,
    crisis_department: str,
    now: datetime,
) -> Envelope[AssignmentCreatedV1] | None:
    """Returns the event to emit, or None if the post already has an assignment."""
    repo = AssignmentRepository(session)
    if await repo.get_by_post_id(post.post_id) is not None:
        return None
    ruleset = compile_ruleset(
        version="builtin-0",
        rules=[],
        default={"department": default_department},
        crisis=Target(crisis_department, f"{crisis_department}.crisis", 1, frozenset(), None),
    )
    decision = ruleset.evaluate(PostFacts.from_screened(post))
    assignment = Assignment(
        id=str(uuid7()),
        post_id=post.post_id,
        department=decision.target.department,
        queue=decision.target.queue,
        responder_id=None,
        priority=decision.priority,
        status="waiting",
        rule_id=decision.rule_id,
        ruleset_version=decision.ruleset_version,
        created_at=now,
    )
    await repo.add(assignment)
    event = AssignmentCreatedV1(
        post_id=post.post_id,
        assignment_id=assignment.id,
        department=assignment.department,
        queue=assignment.queue,
        responder_id=None,
        priority=assignment.priority,
        occurred_at=now,
        status="waiting",
        rule_id=assignment.rule_id,
        ruleset_version=assignment.ruleset_version,
        labels=list(post.labels),
        platform=post.platform,
    )
    return new_event(event, source=SOURCE, time=now)
