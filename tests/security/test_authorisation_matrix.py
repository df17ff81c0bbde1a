"""BFLA: every /v1 operation x every role, generated from the route tables.

The roles an operation lets through are read from its ``require_roles`` dependencies (the one declared
source). They are compared with ``INTENDED``, written by hand from the security model in docs/security.md, so
that a wrong dependency fails here; then every role is sent to every operation of the running services:
roles not allowed get 403 problem+json, allowed roles get anything but 403 (and never a 5xx).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from shared.auth import Role
from tests.conftest import make_token
from tests.security.routes import FACTORIES, allowed_roles, v1_operations

pytestmark = pytest.mark.kafka

R = Role
A = R.ADMIN
#: Who may call what: the intended policy (docs/security.md), not derived from the code.
INTENDED: dict[tuple[str, str, str], set[Role]] = {
    ("ingest", "POST", "/v1/posts"): {A, R.AGENCY_SYSTEM},
    ("ingest", "POST", "/v1/posts:batch"): {A, R.AGENCY_SYSTEM},
    # Ingest cannot tell a post's department: only roles that see every department.
    ("ingest", "GET", "/v1/posts/{post_id}"): {A, R.AGENCY_SYSTEM, R.OPS},
    ("policy", "GET", "/v1/screenings/{post_id}"): {A, R.OPS},
    ("policy", "POST", "/v1/checks"): {A, R.AGENCY_SYSTEM, R.RESPONDER, R.SUPERVISOR},
    ("policy", "GET", "/v1/checks/{check_id}"): {A, R.AGENCY_SYSTEM, R.OPS, R.RESPONDER, R.SUPERVISOR},
    ("policy", "GET", "/v1/policies"): {A, R.OPS, R.RESPONDER, R.SUPERVISOR},
    ("policy", "POST", "/v1/policies"): {A},
    ("policy", "POST", "/v1/policies/{policy_version}/activate"): {A},
    ("policy", "POST", "/v1/policies/{policy_version}/evaluate"): {A, R.SUPERVISOR},
    ("policy", "GET", "/v1/modes"): {A, R.OPS, R.RESPONDER, R.SUPERVISOR},
    ("policy", "POST", "/v1/modes"): {A},
    ("policy", "GET", "/v1/modes/history"): {A, R.OPS, R.RESPONDER, R.SUPERVISOR},
    ("routing", "PUT", "/v1/departments/{department_id}"): {A, R.SUPERVISOR},
    ("routing", "GET", "/v1/departments"): {A, R.OPS, R.SUPERVISOR},
    ("routing", "GET", "/v1/departments/{department_id}"): {A, R.OPS, R.SUPERVISOR},
    ("routing", "PUT", "/v1/sla-policies/{name}"): {A},
    ("routing", "GET", "/v1/sla-policies"): {A, R.OPS, R.SUPERVISOR},
    ("routing", "PUT", "/v1/responders/{responder_id}"): {A, R.SUPERVISOR},
    ("routing", "PUT", "/v1/responders/{responder_id}/status"): {A, R.RESPONDER, R.SUPERVISOR},
    ("routing", "GET", "/v1/responders"): {A, R.OPS, R.SUPERVISOR},
    ("routing", "PUT", "/v1/queues/{queue_id}"): {A, R.SUPERVISOR},
    ("routing", "GET", "/v1/queues"): {A, R.OPS, R.RESPONDER, R.SUPERVISOR},
    ("routing", "POST", "/v1/routing-rules"): {A},
    ("routing", "GET", "/v1/routing-rules"): {A, R.OPS, R.SUPERVISOR},
    ("routing", "GET", "/v1/routing-rules/{version}"): {A, R.OPS, R.SUPERVISOR},
    ("routing", "POST", "/v1/routing-rules/{version}/activate"): {A},
    ("routing", "POST", "/v1/routing-rules/{version}/evaluate"): {A, R.OPS, R.SUPERVISOR},
    ("routing", "GET", "/v1/queue"): {A, R.RESPONDER, R.SUPERVISOR},
    ("routing", "GET", "/v1/assignments"): {A, R.OPS, R.RESPONDER, R.SUPERVISOR},
    ("routing", "GET", "/v1/assignments/{assignment_id}"): {A, R.OPS, R.RESPONDER, R.SUPERVISOR},
    ("routing", "GET", "/v1/assignments/{assignment_id}/explanation"): {A, R.OPS, R.RESPONDER, R.SUPERVISOR},
    **{
        ("routing", "POST", f"/v1/assignments/{{assignment_id}}/{action}"): {A, R.RESPONDER, R.SUPERVISOR}
        for action in ("accept", "decline", "release", "transfer", "resolve", "await-public", "resume")
    },
    ("routing", "POST", "/v1/assignments/{assignment_id}/replies"): {A, R.RESPONDER, R.SUPERVISOR},
    ("routing", "GET", "/v1/approvals"): {A, R.SUPERVISOR},
    ("routing", "POST", "/v1/approvals/{approval_id}/approve"): {A, R.SUPERVISOR},
    ("routing", "POST", "/v1/approvals/{approval_id}/reject"): {A, R.SUPERVISOR},
    ("metrics", "GET", "/v1/posts/{post_id}/timeline"): {A, R.OPS, R.SUPERVISOR},
    ("metrics", "GET", "/v1/timeliness"): {A, R.OPS, R.SUPERVISOR},
    ("metrics", "GET", "/v1/reports/timeliness.csv"): {A, R.OPS, R.SUPERVISOR},
    ("metrics", "GET", "/v1/backlog"): {A, R.OPS, R.SUPERVISOR},
    ("metrics", "GET", "/v1/volume"): {A, R.OPS, R.SUPERVISOR},
    ("metrics", "GET", "/v1/spikes"): {A, R.OPS, R.SUPERVISOR},
    ("metrics", "GET", "/v1/ops/status"): {A, R.OPS},
    ("metrics", "GET", "/v1/ops/dead-letters"): {A, R.OPS},
    ("metrics", "POST", "/v1/ops/dead-letters/{dead_letter_id}/replay"): {A, R.OPS},
    # The hash-chained audit trail (docs/audit.md): admin only, on every service that keeps one.
    **{
        (svc, "GET", path): {A}
        for svc in ("policy", "routing", "metrics")
        for path in ("/v1/audit", "/v1/audit/verify")
    },
}
#: Operations added by other work that this table does not judge yet (each must still be role-gated).
NOT_YET_JUDGED_PREFIXES: tuple[str, ...] = ()

OPERATIONS = v1_operations()


def test_every_operation_is_role_gated() -> None:
    ungated = [op.key for op in OPERATIONS if allowed_roles(op.route) is None]
    assert not ungated, f"operations without a require_roles gate: {ungated}"


def test_the_declared_roles_match_the_intended_policy() -> None:
    declared = {
        op.key: set(allowed_roles(op.route) or ())
        for op in OPERATIONS
        if not op.path.startswith(NOT_YET_JUDGED_PREFIXES)
    }
    wrong = {
        key: {"declared": sorted(declared.get(key, ())), "intended": sorted(INTENDED.get(key, ()))}
        for key in declared.keys() | INTENDED.keys()
        if declared.get(key) != INTENDED.get(key)
    }
    assert not wrong, wrong


def _headers(role: Role) -> dict[str, str]:
    # One subject per role keeps each under the per-principal rate limit.
    token = make_token(role.value, departments=("dept-a",), subject=f"bfla-{role}")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("service", list(FACTORIES))
async def test_each_role_gets_403_exactly_where_it_is_not_allowed(
    service: str,
    build_apps: Callable[..., dict[str, FastAPI]],
    running: Callable[..., object],
) -> None:
    app = build_apps()[service]
    failures: list[str] = []
    async with running(app) as client:  # type: ignore[attr-defined]
        assert isinstance(client, httpx.AsyncClient)
        for op in (o for o in OPERATIONS if o.service == service):
            allowed = allowed_roles(op.route) or frozenset()
            for role in Role:
                r = await client.request(op.method, op.concrete(), headers=_headers(role), json={})
                if role in allowed:
                    if r.status_code == 403 or r.status_code >= 500:
                        failures.append(f"{role} {op.method} {op.path}: {r.status_code} {r.text[:200]}")
                elif r.status_code != 403 or r.headers.get("content-type") != "application/problem+json":
                    failures.append(f"{role} {op.method} {op.path}: {r.status_code}, expected 403 problem")
    assert not failures, "\n".join(failures)
