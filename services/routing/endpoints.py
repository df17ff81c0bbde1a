"""HTTP in: the directory, rule sets, the responder workflow, replies and approvals. Thin: validate, call the
service, emit its events through the outbox in the request's transaction, map errors to problem+json."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing import audit, rules, service
from services.routing.clients import PolicyClient, Publisher
from services.routing.models import Department, Queue, Responder, RuleSetRow, SlaPolicy
from services.routing.repository import (
    ApprovalRepository,
    AssignmentRepository,
    DepartmentRepository,
    QueueRepository,
    ResponderRepository,
    RuleSetRepository,
    SlaPolicyRepository,
)
from services.routing.schemas import (
    ApprovalDecision,
    ApprovalRead,
    AssignmentRead,
    DepartmentRead,
    DepartmentWrite,
    EvaluateRequest,
    EvaluateResponse,
    EvaluateResult,
    ExplanationRead,
    Id,
    QueueRead,
    QueueView,
    QueueWrite,
    ReleaseRequest,
    ReplyCreate,
    ReplyRead,
    ResolveRequest,
    ResponderRead,
    ResponderStatus,
    ResponderWrite,
    RuleSetRead,
    RuleSetWrite,
    SlaPolicyRead,
    SlaPolicyWrite,
    TransferRequest,
)
from shared.auth import Principal, Role, authenticated, require_roles
from shared.contracts import PostScreenedV1
from shared.deps import SessionDep
from shared.errors import FieldProblem, Forbidden, NotFound, ServiceError, problem_responses
from shared.http import DEFAULT_PAGE_SIZE, PageLimit
from shared.logging import current_correlation_id

# Every /v1 route needs a valid bearer token, checked before anything else runs.
router = APIRouter(
    prefix="/v1", responses=problem_responses(401, 403, 422), dependencies=[Depends(authenticated)]
)

Reader = Annotated[Principal, Depends(require_roles(Role.RESPONDER, Role.SUPERVISOR, Role.OPS))]
Worker = Annotated[Principal, Depends(require_roles(Role.RESPONDER, Role.SUPERVISOR))]
Supervisor = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR))]
DirectoryReader = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.OPS))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Limit = PageLimit
#: A rule-set version number (bounded: the database column is a 32-bit integer).
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
After = Annotated[str | None, Query(max_length=100, description="Return items after this id (pagination).")]


def _now() -> datetime:
    return datetime.now(UTC)


def _config(request: Request) -> service.RoutingConfig:
    config: service.RoutingConfig = request.app.state.routing_config
    return config


def _emit(request: Request, session: AsyncSession, events: list[Any]) -> None:
    outbox = request.app.state.runtime.outbox
    for envelope in events:
        outbox.add(session, envelope)
    audit.record_events(session, events, actor=request.state.principal.subject)


def _visible(principal: Principal) -> frozenset[str] | None:
    """The departments a principal's lists are filtered to (None: every department, for admin and ops)."""
    return None if principal.has_any({Role.ADMIN, Role.OPS}) else principal.departments


def _may_manage(principal: Principal, departments: list[str] | set[str]) -> None:
    if not all(principal.can_see_department(d) for d in departments):
        raise Forbidden("Supervisors manage only their own departments.")


# --- directory: departments ---


@router.put("/departments/{department_id}", response_model=DepartmentRead, tags=["directory"])
async def put_department(
    department_id: Id, body: DepartmentWrite, request: Request, session: SessionDep, principal: Supervisor
) -> Department:
    """Create or replace a department; its default and supervisors queues (and the crisis queue of the crisis
    department) are created with it."""
    _may_manage(principal, [department_id])
    repo = DepartmentRepository(session)
    dept = await repo.get(department_id) or Department(id=department_id)
    dept.name, dept.timezone, dept.hours, dept.state = body.name, body.timezone, body.hours, body.state
    dept.closures = sorted(d.isoformat() for d in body.closures)
    dept.sla_policy, dept.updated_at = body.sla_policy, _now()
    await repo.add(dept)
    queues = QueueRepository(session)
    wanted = [
        (f"{department_id}.default", "standard", []),
        (f"{department_id}.supervisors", "supervisors", ["supervisor"]),
    ]
    if department_id == _config(request).crisis_department:
        wanted.append((f"{department_id}.crisis", "crisis", []))
    for qid, kind, skills in wanted:
        if await queues.get(qid) is None:
            await queues.add(
                Queue(
                    id=qid,
                    department=department_id,
                    name=qid,
                    kind=kind,
                    required_skills=skills,
                    updated_at=_now(),
                )
            )
    return dept


@router.get("/departments", response_model=list[DepartmentRead], tags=["directory"])
async def list_departments(
    session: SessionDep, principal: DirectoryReader, limit: Limit = DEFAULT_PAGE_SIZE, after: After = None
) -> Any:
    """Every department for admin and ops; a supervisor's own departments otherwise."""
    return await DepartmentRepository(session).list(after=after, limit=limit, departments=_visible(principal))


@router.get(
    "/departments/{department_id}",
    response_model=DepartmentRead,
    tags=["directory"],
    responses=problem_responses(404),
)
async def get_department(department_id: str, session: SessionDep, principal: DirectoryReader) -> Department:
    dept = await DepartmentRepository(session).get(department_id)
    # Another department is reported as absent, not forbidden: no existence oracle.
    if dept is None or not principal.can_see_department(dept.id):
        raise NotFound(f"No department with id {department_id!r}.")
    return dept


# --- directory: SLA policies ---


@router.put("/sla-policies/{name}", response_model=SlaPolicyRead, tags=["directory"])
async def put_sla_policy(name: Id, body: SlaPolicyWrite, session: SessionDep, _: Admin) -> SlaPolicy:
    repo = SlaPolicyRepository(session)
    row = await repo.get(name) or SlaPolicy(name=name)
    for k, v in body.model_dump().items():
        setattr(row, k, v)
    row.updated_at = _now()
    return await repo.add(row)


@router.get("/sla-policies", response_model=list[SlaPolicyRead], tags=["directory"])
async def list_sla_policies(session: SessionDep, _: DirectoryReader, limit: Limit = 50) -> Any:
    return await SlaPolicyRepository(session).list(limit=limit)


# --- directory: responders ---


async def _responder_read(session: AsyncSession, rows: list[Responder]) -> list[ResponderRead]:
    repo = ResponderRepository(session)
    ids = [r.id for r in rows]
    depts, loads = await repo.departments_of(ids), await repo.loads(ids)
    return [
        ResponderRead(
            id=r.id,
            name=r.name,
            departments=sorted(depts[r.id]),
            skills=r.skills,
            languages=r.languages,
            capacity=r.capacity,
            status=r.status,
            load=loads.get(r.id, 0),
            idle_since=r.idle_since,
        )
        for r in rows
    ]


@router.put("/responders/{responder_id}", response_model=ResponderRead, tags=["directory"])
async def put_responder(
    responder_id: Id, body: ResponderWrite, request: Request, session: SessionDep, principal: Supervisor
) -> ResponderRead:
    repo = ResponderRepository(session)
    row = await repo.get(responder_id)
    old = (await repo.departments_of([responder_id]))[responder_id] if row is not None else set()
    _may_manage(principal, set(body.departments) | old)
    row = row or Responder(id=responder_id, idle_since=None)
    row.name, row.skills, row.languages = body.name, sorted(set(body.skills)), sorted(set(body.languages))
    row.capacity, row.status, row.updated_at = body.capacity, body.status, _now()
    await repo.add(row)
    await repo.set_departments(responder_id, sorted(set(body.departments)))
    # More capacity or a new status may let waiting posts through right now.
    _emit(
        request,
        session,
        await service.responder_changed(
            session=session, responder_id=responder_id, config=_config(request), now=_now()
        ),
    )
    return (await _responder_read(session, [row]))[0]


@router.put(
    "/responders/{responder_id}/status",
    response_model=ResponderRead,
    tags=["directory"],
    responses=problem_responses(404),
)
async def put_responder_status(
    responder_id: Id, body: ResponderStatus, request: Request, session: SessionDep, principal: Worker
) -> ResponderRead:
    """A responder sets their own status; a supervisor may set it for their departments' responders."""
    repo = ResponderRepository(session)
    row = await repo.get(responder_id)
    depts = (await repo.departments_of([responder_id]))[responder_id] if row is not None else set()
    # Someone outside the caller's departments is reported as absent, not forbidden: no existence oracle.
    if row is None or (
        principal.subject != responder_id and not any(principal.can_see_department(d) for d in depts)
    ):
        raise NotFound(f"No responder with id {responder_id!r}.")
    if principal.subject != responder_id:
        if not principal.has_any({Role.SUPERVISOR, Role.ADMIN}):
            raise Forbidden("Responders set only their own status.")
        _may_manage(principal, depts)
    row.status, row.updated_at = body.status, _now()
    await session.flush()
    _emit(
        request,
        session,
        await service.responder_changed(
            session=session, responder_id=responder_id, config=_config(request), now=_now()
        ),
    )
    return (await _responder_read(session, [row]))[0]


@router.get("/responders", response_model=list[ResponderRead], tags=["directory"])
async def list_responders(
    session: SessionDep,
    principal: DirectoryReader,
    department: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    after: After = None,
) -> list[ResponderRead]:
    if department is not None:
        _may_manage(principal, [department])
    elif not principal.has_any({Role.ADMIN, Role.OPS}):
        raise ServiceError(
            "Name a department (supervisors see their own departments' responders).",
            status_code=422,
            errors=[FieldProblem(field="query.department", reason="required for supervisors")],
        )
    rows = await ResponderRepository(session).list(department=department, after=after, limit=limit)
    return await _responder_read(session, list(rows))


# --- directory: queues ---


@router.put("/queues/{queue_id}", response_model=QueueRead, tags=["directory"])
async def put_queue(queue_id: Id, body: QueueWrite, session: SessionDep, principal: Supervisor) -> Queue:
    repo = QueueRepository(session)
    existing = await repo.get(queue_id)
    # Replacing a queue needs the right to its current department too (no moving another's queue away).
    _may_manage(principal, [body.department] + ([existing.department] if existing else []))
    if await DepartmentRepository(session).get(body.department) is None:
        raise ServiceError(
            "Unknown department.",
            status_code=422,
            errors=[FieldProblem(field="body.department", reason="no such department")],
        )
    row = existing or Queue(id=queue_id)
    row.department, row.name, row.kind = body.department, body.name, body.kind
    row.required_skills, row.updated_at = sorted(set(body.required_skills)), _now()
    return await repo.add(row)


@router.get("/queues", response_model=list[QueueRead], tags=["directory"])
async def list_queues(
    session: SessionDep,
    principal: Reader,
    department: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    after: After = None,
) -> Any:
    """Queues of the caller's departments (every department for admin and ops)."""
    return await QueueRepository(session).list(
        department=department, after=after, limit=limit, departments=_visible(principal)
    )


# --- routing rules ---


def _rule_problems(exc: rules.RuleError) -> ServiceError:
    first_rule = exc.problems[0][0] if exc.problems else "?"
    return ServiceError(
        f"The rule set is not valid (first fault in rule {first_rule!r}).",
        status_code=422,
        errors=[
            FieldProblem(field=f"body.{path}", reason=f"rule {rule}: {reason}")
            for rule, path, reason in exc.problems[:100]
        ],
    )


@router.post("/routing-rules", response_model=RuleSetRead, status_code=201, tags=["rules"])
async def create_ruleset(
    body: RuleSetWrite, request: Request, session: SessionDep, principal: Admin
) -> RuleSetRow:
    """Store a new version of the rules (versions are immutable); activate it unless ``activate`` is false."""
    repo = RuleSetRepository(session)
    version = await repo.next_version()
    try:
        compiled = rules.compile_ruleset(
            version=str(version),
            rules=body.rules,
            default=body.default,
            crisis=_config(request).crisis_target,
        )
    except rules.RuleError as exc:
        raise _rule_problems(exc) from None
    targets = [
        (r.id, f"rules[{i}].target.department", r.target.department) for i, r in enumerate(compiled.rules)
    ]
    targets.append(("default", "default.department", compiled.default.department))
    known = await DepartmentRepository(session).get_many({t[2] for t in targets})
    unknown = [(rid, path, d) for rid, path, d in targets if d not in known]
    if unknown:
        raise _rule_problems(
            rules.RuleError(
                [(rid, path, f"no department {d!r} in the directory") for rid, path, d in unknown]
            )
        )
    if body.activate:
        await repo.deactivate_all()
    row = RuleSetRow(
        version=version,
        rules=body.rules,
        default=body.default,
        active=body.activate,
        created_by=principal.subject[:100],
        created_at=_now(),
    )
    audit.ruleset_changed(session, row, actor=principal.subject, action="routing.rules_created")
    return await repo.add(row)


@router.get("/routing-rules", response_model=list[RuleSetRead], tags=["rules"])
async def list_rulesets(session: SessionDep, _: DirectoryReader, limit: Limit = 20) -> Any:
    return await RuleSetRepository(session).list(limit=limit)


async def _ruleset(session: AsyncSession, version: int) -> RuleSetRow:
    row = await RuleSetRepository(session).get(version)
    if row is None:
        raise NotFound(f"No rule set version {version}.")
    return row


@router.get(
    "/routing-rules/{version}", response_model=RuleSetRead, tags=["rules"], responses=problem_responses(404)
)
async def get_ruleset(version: Version, session: SessionDep, _: DirectoryReader) -> RuleSetRow:
    return await _ruleset(session, version)


@router.post(
    "/routing-rules/{version}/activate",
    response_model=RuleSetRead,
    tags=["rules"],
    responses=problem_responses(404),
)
async def activate_ruleset(version: Version, session: SessionDep, principal: Admin) -> RuleSetRow:
    row = await _ruleset(session, version)
    await RuleSetRepository(session).deactivate_all()
    row.active = True
    audit.ruleset_changed(session, row, actor=principal.subject, action="routing.rules_activated")
    await session.flush()
    return row


@router.post(
    "/routing-rules/{version}/evaluate",
    response_model=EvaluateResponse,
    tags=["rules"],
    responses=problem_responses(404),
)
async def evaluate_ruleset(
    version: Version, body: EvaluateRequest, request: Request, session: SessionDep, _: DirectoryReader
) -> EvaluateResponse:
    """Dry run: where would these posts go under this version? Nothing is stored or emitted."""
    row = await _ruleset(session, version)
    compiled = rules.compile_ruleset(
        version=str(row.version), rules=row.rules, default=row.default, crisis=_config(request).crisis_target
    )
    results = []
    for sample in body.posts:
        post = PostScreenedV1(
            post_id=sample.post_id,
            screening_id="dry-run",
            policy_version="dry-run",
            labels=sample.labels,
            risk=sample.risk,
            priority=sample.priority,
            redacted_text=sample.text,
            platform=sample.platform,
            account=sample.account,
            author_ref=sample.author_ref,
            visibility=sample.visibility,
            screened_at=_now(),
        )
        m = compiled.evaluate(rules.PostFacts.from_screened(post))
        results.append(EvaluateResult(post_id=sample.post_id, **m.explain()))
    return EvaluateResponse(results=results)


# --- responder workflow ---


@router.get("/queue", response_model=QueueView, tags=["workflow"])
async def my_queue(session: SessionDep, principal: Worker, limit: Limit = 50) -> QueueView:
    """My open assignments and my departments' waiting posts (priority, then age)."""
    mine, waiting = await service.my_queue(session=session, actor=principal, limit=limit)
    return QueueView(
        mine=[AssignmentRead.model_validate(a) for a in mine],
        waiting=[AssignmentRead.model_validate(a) for a in waiting],
    )


@router.get("/assignments", response_model=list[AssignmentRead], tags=["workflow"])
async def find_assignments(
    session: SessionDep, principal: Reader, post_id: Annotated[str, Query(min_length=1, max_length=64)]
) -> list[AssignmentRead]:
    """The assignment of a post (a list: empty when the post is not routed yet or not the caller's to see)."""
    a = await AssignmentRepository(session).get_by_post_id(post_id)
    if a is None or not principal.can_see_department(a.department):
        return []
    return [AssignmentRead.model_validate(a)]


@router.get(
    "/assignments/{assignment_id}",
    response_model=AssignmentRead,
    tags=["workflow"],
    responses=problem_responses(404),
)
async def get_assignment(assignment_id: str, session: SessionDep, principal: Reader) -> AssignmentRead:
    assignment = await AssignmentRepository(session).get(assignment_id)
    # Another department's assignment is reported as absent, not forbidden: no existence oracle.
    if assignment is None or not principal.can_see_department(assignment.department):
        raise NotFound(f"No assignment with id {assignment_id!r}.")
    return AssignmentRead.model_validate(assignment)


@router.get(
    "/assignments/{assignment_id}/explanation",
    response_model=ExplanationRead,
    tags=["workflow"],
    responses=problem_responses(404),
)
async def get_explanation(assignment_id: str, session: SessionDep, principal: Reader) -> Any:
    return await service.explanation(session=session, assignment_id=assignment_id, actor=principal)


TRANSITION_ERRORS = problem_responses(404, 409)


@router.post(
    "/assignments/{assignment_id}/accept",
    response_model=AssignmentRead,
    tags=["workflow"],
    responses=TRANSITION_ERRORS,
)
async def accept(
    assignment_id: str, request: Request, session: SessionDep, principal: Worker
) -> AssignmentRead:
    a, events = await service.accept(
        session=session, assignment_id=assignment_id, actor=principal, now=_now()
    )
    _emit(request, session, events)
    return AssignmentRead.model_validate(a)


@router.post(
    "/assignments/{assignment_id}/decline",
    response_model=AssignmentRead,
    tags=["workflow"],
    responses=TRANSITION_ERRORS,
)
async def decline(
    assignment_id: str, request: Request, session: SessionDep, principal: Worker
) -> AssignmentRead:
    a, events = await service.decline(
        session=session, assignment_id=assignment_id, actor=principal, config=_config(request), now=_now()
    )
    _emit(request, session, events)
    return AssignmentRead.model_validate(a)


@router.post(
    "/assignments/{assignment_id}/release",
    response_model=AssignmentRead,
    tags=["workflow"],
    responses=TRANSITION_ERRORS,
)
async def release(
    assignment_id: str, body: ReleaseRequest, request: Request, session: SessionDep, principal: Worker
) -> AssignmentRead:
    a, events = await service.release(
        session=session,
        assignment_id=assignment_id,
        actor=principal,
        reason=body.reason,
        config=_config(request),
        now=_now(),
    )
    _emit(request, session, events)
    return AssignmentRead.model_validate(a)


@router.post(
    "/assignments/{assignment_id}/transfer",
    response_model=AssignmentRead,
    tags=["workflow"],
    responses=TRANSITION_ERRORS,
)
async def transfer(
    assignment_id: str, body: TransferRequest, request: Request, session: SessionDep, principal: Worker
) -> AssignmentRead:
    a, events = await service.transfer(
        session=session,
        assignment_id=assignment_id,
        actor=principal,
        department=body.department,
        responder_id=body.responder_id,
        reason=body.reason,
        config=_config(request),
        now=_now(),
    )
    _emit(request, session, events)
    return AssignmentRead.model_validate(a)


@router.post(
    "/assignments/{assignment_id}/resolve",
    response_model=AssignmentRead,
    tags=["workflow"],
    responses=TRANSITION_ERRORS,
)
async def resolve(
    assignment_id: str, body: ResolveRequest, request: Request, session: SessionDep, principal: Worker
) -> AssignmentRead:
    a, events = await service.resolve(
        session=session,
        assignment_id=assignment_id,
        actor=principal,
        outcome=body.outcome,
        config=_config(request),
        now=_now(),
    )
    _emit(request, session, events)
    return AssignmentRead.model_validate(a)


@router.post(
    "/assignments/{assignment_id}/await-public",
    response_model=AssignmentRead,
    tags=["workflow"],
    responses=TRANSITION_ERRORS,
)
async def await_public(
    assignment_id: str, request: Request, session: SessionDep, principal: Worker
) -> AssignmentRead:
    """Waiting for the public's answer: the SLA clocks pause until /resume."""
    a, events = await service.await_public(
        session=session, assignment_id=assignment_id, actor=principal, now=_now()
    )
    _emit(request, session, events)
    return AssignmentRead.model_validate(a)


@router.post(
    "/assignments/{assignment_id}/resume",
    response_model=AssignmentRead,
    tags=["workflow"],
    responses=TRANSITION_ERRORS,
)
async def resume(
    assignment_id: str, request: Request, session: SessionDep, principal: Worker
) -> AssignmentRead:
    a, events = await service.resume_work(
        session=session, assignment_id=assignment_id, actor=principal, now=_now()
    )
    _emit(request, session, events)
    return AssignmentRead.model_validate(a)


# --- replies and approvals ---


class PolicyBlocked(ServiceError):
    status_code = 422
    title = "Reply blocked by policy"


def _reply_read(reply: Any, approval_id: str | None) -> ReplyRead:
    return ReplyRead(
        id=reply.id,
        assignment_id=reply.assignment_id,
        status=reply.status,
        check_id=reply.check_id,
        policy_version=reply.policy_version,
        findings=reply.findings,
        approval_id=approval_id,
        created_at=reply.created_at,
        published_at=reply.published_at,
    )


@router.post(
    "/assignments/{assignment_id}/replies",
    response_model=ReplyRead,
    status_code=201,
    tags=["replies"],
    responses=problem_responses(404, 409, 503),
)
async def create_reply(
    assignment_id: str, body: ReplyCreate, request: Request, response: Response, principal: Worker
) -> ReplyRead:
    """Check the reply with policy, then: allow -> published (201); review -> waits for a supervisor (202);
    block -> 422 with the findings. Policy unreachable -> 503 and nothing is published."""
    db = request.app.state.runtime.database
    # No transaction is held while policy is asked: the check may take seconds and SQLite has one writer.
    async with db.transaction() as session:
        ctx = await service.reply_context(session=session, assignment_id=assignment_id, actor=principal)
    policy: PolicyClient = request.app.state.policy_client
    media = [m.model_dump(exclude_none=True) for m in body.media]
    bearer = request.headers.get("authorization", "").partition(" ")[2].strip() or None
    result = await policy.check(
        text=body.text,
        platform=ctx.platform,
        visibility=ctx.visibility,
        media=media,
        in_reply_to_post_id=ctx.post_id,
        department=ctx.department,
        bearer=bearer,
        correlation_id=current_correlation_id(),
    )
    findings = [f.model_dump() for f in result.findings]
    if result.decision == "block":
        raise PolicyBlocked(
            "Policy blocked this reply; see the findings for what to change.",
            errors=[
                FieldProblem(field="body.text", reason=f"{f.rule_id}: {f.message}"[:500])
                for f in result.findings[:50]
            ],
            extra={
                "findings": findings,
                "check_id": result.check_id,
                "policy_version": result.policy_version,
            },
        )
    check = service.CheckOutcome(result.check_id, result.decision, findings, result.policy_version)
    async with db.transaction() as session:
        reply, approval, events = await service.record_reply(
            session=session,
            assignment_id=assignment_id,
            actor=principal,
            text=body.text,
            media=media,
            check=check,
            now=_now(),
        )
        _emit(request, session, events)
    if reply.status == "published":
        publisher: Publisher = request.app.state.publisher
        await publisher.publish(reply, platform=ctx.platform, post_id=ctx.post_id)
    else:
        response.status_code = 202
    return _reply_read(reply, approval.id if approval else None)


@router.get("/approvals", response_model=list[ApprovalRead], tags=["replies"])
async def list_approvals(
    session: SessionDep, principal: Supervisor, limit: Limit = 50, after: After = None
) -> Any:
    departments = None if principal.has_any({Role.ADMIN}) else principal.departments
    return await ApprovalRepository(session).pending(departments, after=after, limit=limit)


async def _decide(
    approval_id: str, body: ApprovalDecision, request: Request, principal: Principal, approve: bool
) -> ApprovalRead:
    # Our own transaction: the reply is handed to the publisher only after its state has committed.
    async with request.app.state.runtime.database.transaction() as session:
        ap, reply, events = await service.decide_approval(
            session=session,
            approval_id=approval_id,
            actor=principal,
            approve=approve,
            reason=body.reason,
            now=_now(),
        )
        _emit(request, session, events)
        a = await AssignmentRepository(session).get(ap.assignment_id)
        read = ApprovalRead.model_validate(ap)
    if approve and a is not None:
        publisher: Publisher = request.app.state.publisher
        await publisher.publish(reply, platform=a.platform, post_id=a.post_id)
    return read


@router.post(
    "/approvals/{approval_id}/approve",
    response_model=ApprovalRead,
    tags=["replies"],
    responses=TRANSITION_ERRORS,
)
async def approve(
    approval_id: str, body: ApprovalDecision, request: Request, principal: Supervisor
) -> ApprovalRead:
    return await _decide(approval_id, body, request, principal, True)


@router.post(
    "/approvals/{approval_id}/reject",
    response_model=ApprovalRead,
    tags=["replies"],
    responses=TRANSITION_ERRORS,
)
async def reject(
    approval_id: str, body: ApprovalDecision, request: Request, principal: Supervisor
) -> ApprovalRead:
    return await _decide(approval_id, body, request, principal, False)
