"""HTTP in: screenings, pre-publication checks, policy packs and modes. Thin: validate, call service, map."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.policy import engine, service
from services.policy.models import Check
from services.policy.pack import MAX_PACK_BYTES, PackInvalid
from services.policy.repository import ScreeningRepository
from services.policy.schemas import (
    ActivateRequest,
    ActivationRead,
    CheckCreate,
    CheckFinding,
    CheckRead,
    EvaluateRequest,
    EvaluateResponse,
    EvaluateResult,
    ModeRead,
    ModeSet,
    PolicyRead,
    ScreeningRead,
    Span,
)
from shared.auth import Principal, Role, authenticated, require_roles
from shared.deps import SessionDep
from shared.errors import NotFound, ServiceError, problem_responses
from shared.http import DEFAULT_PAGE_SIZE, PageLimit

# Every /v1 route needs a valid bearer token, checked before anything else runs.
router = APIRouter(
    prefix="/v1",
    responses=problem_responses(401, 403),
    dependencies=[Depends(authenticated)],
)

Reader = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR, Role.RESPONDER, Role.OPS))]
# Policy does not know which department a post is routed to: only roles that see every department read
# screenings here; department staff see the labels and redacted text on routing's assignments.
ScreeningReader = Annotated[Principal, Depends(require_roles(Role.OPS))]
Checker = Annotated[Principal, Depends(require_roles(Role.RESPONDER, Role.SUPERVISOR, Role.AGENCY_SYSTEM))]
CheckReader = Annotated[
    Principal, Depends(require_roles(Role.RESPONDER, Role.SUPERVISOR, Role.AGENCY_SYSTEM, Role.OPS))
]
Tester = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]

PACK_CONTENT_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/json", "text/plain")


def _now() -> datetime:
    return datetime.now(UTC)


def finding_out(f: engine.Finding | dict[str, Any]) -> CheckFinding:
    d = f.as_dict() if isinstance(f, engine.Finding) else f
    span = Span(start=d["start"], end=d["end"]) if d.get("start") is not None else None
    return CheckFinding(
        rule_id=d["rule_id"],
        label=d["label"],
        severity=d["severity"],
        action=d["action"],
        message=d["message"],
        span=span,
        suggestion=d.get("suggestion"),
        source=d["source"],
    )


def check_out(check: Check) -> CheckRead:
    return CheckRead(
        check_id=check.id,
        decision=check.decision,
        findings=[finding_out(f) for f in check.findings],
        policy_version=check.policy_version,
        failed_rules=check.failed_rules,
        active_modes=check.active_modes,
        checked_at=check.checked_at,
    )


# --- screenings --------------------------------------------------------------------------------------------


@router.get(
    "/screenings/{post_id}",
    tags=["screenings"],
    response_model=ScreeningRead,
    summary="The stored screening of one inbound post",
    responses=problem_responses(404),
)
async def get_screening(post_id: str, session: SessionDep, _principal: ScreeningReader) -> ScreeningRead:
    screening = await ScreeningRepository(session).get_by_post_id(post_id[:64])
    if screening is None:
        raise NotFound(f"No screening for post {post_id[:64]!r}.")
    return ScreeningRead.model_validate(screening)


# --- checks ------------------------------------------------------------------------------------------------


@router.post(
    "/checks",
    tags=["checks"],
    status_code=201,
    response_model=CheckRead,
    summary="Check a draft reply before it is published",
    description=(
        "Evaluates the draft against the active policy pack (outbound rules) and the current caretaker and "
        "crisis modes. `decision` is the strongest action of the findings: `block` (do not publish), "
        "`review` (a person must approve), `allow`. Every finding says in plain English what was found and, "
        "where possible, how to fix it. The check is stored (the draft with personal information masked, "
        "and its SHA-256) and can be read back with GET /v1/checks/{check_id}. The routing service calls "
        "this before publishing any reply. With `department`, a responder or supervisor whose token does not "
        "list that department gets a `block` finding (OUT-01)."
    ),
    responses=problem_responses(413, 422),
)
async def create_check(body: CheckCreate, session: SessionDep, principal: Checker) -> CheckRead:
    # OUT-01: a responder or supervisor checks replies only for their own departments; services are trusted.
    limited = not principal.has_any({Role.AGENCY_SYSTEM, Role.ADMIN})
    check = await service.run_check(
        session=session,
        request=body,
        checked_by=principal.subject,
        now=_now(),
        authorised_departments=principal.departments if limited else None,
    )
    return check_out(check)


@router.get(
    "/checks/{check_id}",
    tags=["checks"],
    response_model=CheckRead,
    summary="A stored pre-publication check and its result",
    responses=problem_responses(404),
)
async def get_check(check_id: str, session: SessionDep, principal: CheckReader) -> CheckRead:
    check = await service.get_check(session=session, check_id=check_id[:36])
    # Another department's check is reported as absent, not forbidden: no existence oracle.
    if not (
        principal.has_any({Role.ADMIN, Role.OPS, Role.AGENCY_SYSTEM})
        or check.checked_by == principal.subject
        or (check.department is not None and check.department in principal.departments)
    ):
        raise NotFound(f"No check {check_id[:36]!r}.")
    return check_out(check)


# --- policy packs ------------------------------------------------------------------------------------------


@router.get("/policies", tags=["policies"], response_model=list[PolicyRead], summary="Policy pack versions")
async def list_policies(
    session: SessionDep, _principal: Reader, limit: PageLimit = DEFAULT_PAGE_SIZE
) -> list[PolicyRead]:
    infos = await service.list_packs(session=session, limit=limit)
    return [PolicyRead(**info.__dict__) for info in infos]


@router.post(
    "/policies",
    tags=["policies"],
    status_code=201,
    response_model=PolicyRead,
    summary="Upload a new policy pack version (YAML or JSON); it is not active until activated",
    responses=problem_responses(409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"The pack document, at most {MAX_PACK_BYTES} bytes. See docs/policy.md.",
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def upload_policy(request: Request, session: SessionDep, principal: Admin) -> PolicyRead:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in PACK_CONTENT_TYPES:
        raise ServiceError(f"Send the pack as one of: {', '.join(PACK_CONTENT_TYPES)}.", status_code=415)
    raw = await request.body()
    try:
        row = await service.upload_pack(session=session, raw=raw, created_by=principal.subject, now=_now())
    except PackInvalid as exc:
        raise ServiceError(
            "The policy pack is not valid; nothing was stored and the active pack is unchanged.",
            status_code=422,
            errors=exc.problems,
        ) from exc
    return PolicyRead(
        policy_version=row.policy_version,
        name=row.name,
        version=row.version,
        jurisdiction=str(row.document.get("jurisdiction", "")),
        rule_count=row.rule_count,
        builtin=False,
        active=False,
        created_by=row.created_by,
        created_at=row.created_at,
    )


@router.post(
    "/policies/{policy_version}/activate",
    tags=["policies"],
    response_model=ActivationRead,
    summary="Make a stored version the active pack (audited: who, when, why)",
    responses=problem_responses(404, 422),
)
async def activate_policy(
    policy_version: str, body: ActivateRequest, session: SessionDep, principal: Admin
) -> ActivationRead:
    row = await service.activate(
        session=session,
        policy_version=policy_version[:64],
        activated_by=principal.subject,
        reason=body.reason,
        now=_now(),
    )
    return ActivationRead.model_validate(row)


@router.post(
    "/policies/{policy_version}/evaluate",
    tags=["policies"],
    response_model=EvaluateResponse,
    summary="Dry-run a pack version against texts; nothing is stored",
    responses=problem_responses(404, 422),
)
async def evaluate_policy(
    policy_version: str, body: EvaluateRequest, session: SessionDep, _principal: Tester
) -> EvaluateResponse:
    version, runs = await service.evaluate(
        session=session, policy_version=policy_version[:64], items=body.items, now=_now()
    )
    return EvaluateResponse(
        policy_version=version,
        results=[
            EvaluateResult(
                labels=r.labels,
                findings=[finding_out(f) for f in r.findings],
                failed_rules=r.failed_rules,
                decision=r.decision,
                risk=r.risk,
                priority=r.priority,
                redacted_text=r.redacted_text,
            )
            for r in runs
        ],
    )


# --- modes -------------------------------------------------------------------------------------------------


@router.get(
    "/modes", tags=["modes"], response_model=list[ModeRead], summary="Current caretaker and crisis modes"
)
async def get_modes(session: SessionDep, _principal: Reader) -> list[ModeRead]:
    return [ModeRead.model_validate(m) for m in await service.current_modes(session=session)]


@router.post(
    "/modes",
    tags=["modes"],
    status_code=201,
    response_model=ModeRead,
    summary="Switch caretaker (per jurisdiction, with start and end) or crisis mode on or off (audited)",
    responses=problem_responses(422),
)
async def set_mode(body: ModeSet, session: SessionDep, principal: Admin) -> ModeRead:
    row = await service.set_mode(session=session, change=body, changed_by=principal.subject, now=_now())
    return ModeRead.model_validate(row)


@router.get(
    "/modes/history", tags=["modes"], response_model=list[ModeRead], summary="Audit trail of mode changes"
)
async def get_mode_history(
    session: SessionDep, _principal: Reader, limit: PageLimit = DEFAULT_PAGE_SIZE
) -> list[ModeRead]:
    return [ModeRead.model_validate(m) for m in await service.mode_history(session=session, limit=limit)]
