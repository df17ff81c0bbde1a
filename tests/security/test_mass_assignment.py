"""API3 (BOPLA): input models refuse fields they do not declare; responses carry no internal fields; raw
author details only for the roles allowed to see them (docs/security.md)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from services.ingest.endpoints import RAW_AUTHOR_ROLES
from services.policy.service import DEFAULT_PACK_PATH
from shared.auth import Role
from tests.conftest import make_token
from tests.security.openapi_walk import json_request_body, object_schemas, resolve, response_schemas
from tests.security.routes import FACTORIES, v1_operations

SPECS = {service: factory().openapi() for service, factory in FACTORIES.items()}
#: Property names that must never appear in a response schema.
INTERNAL = re.compile(r"secret|password|passwd|private_key|outbox|inbox|api_key|(^|_)token$|hash$", re.I)
#: Raw author details: only inside AuthorRead, which only PostRead.author carries (role-gated).
RAW_AUTHOR = {"author_id", "author_handle", "author_display_name", "display_name", "handle"}
#: Properties that look internal by name but are not: what each is, so a new one is a decision.
INTERNAL_ALLOWED = {
    "response_token": "X's CRC answer, an HMAC of X's own challenge, the point of GET /v1/webhooks/x",
    "text_sha256": "proves what a check saw without storing the draft's personal information",
    "prev_hash": "an audit entry's link to the one before it: the point of GET /v1/audit (docs/audit.md)",
    "entry_hash": "an audit entry's own hash in the chain (docs/audit.md)",
    "head_hash": "the audit chain's last hash, to record elsewhere (GET /v1/audit/verify, docs/audit.md)",
}


def json_body_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for service, spec in SPECS.items():
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                schema = json_request_body(operation)
                # The policy pack (a free-form document in the OpenAPI) is checked at run time below.
                if schema is not None and path.startswith("/v1") and "properties" in resolve(spec, schema):
                    out.append((service, method.upper(), path, schema))
    return out


BODIES = json_body_operations()


def test_request_bodies_were_found() -> None:
    assert len(BODIES) >= 15
    assert {s for s, *_ in BODIES} == set(FACTORIES)


@pytest.mark.parametrize(
    ("service", "method", "path", "schema"), BODIES, ids=[f"{b[1]} {b[2]}" for b in BODIES]
)
def test_every_object_in_a_request_body_forbids_extra_fields(
    service: str, method: str, path: str, schema: dict[str, Any]
) -> None:
    spec = SPECS[service]
    open_objects = [
        f"{where} ({name})"
        for where, name, obj in object_schemas(spec, schema, "body")
        if obj.get("additionalProperties") is not False
    ]
    assert not open_objects, f"{method} {path}: objects accepting undeclared fields: {open_objects}"


@pytest.mark.kafka
async def test_an_injected_field_is_a_422_naming_it_on_every_operation(
    platform: tuple[dict[str, FastAPI], dict[str, httpx.AsyncClient]],
) -> None:
    _, clients = platform
    admin = {"Authorization": f"Bearer {make_token('admin', subject='mass-assignment')}"}
    failures = []
    for service, method, path, _schema in BODIES:
        url = re.sub(r"\{(version|dead_letter_id)\}", "1", path)
        url = re.sub(r"\{[^}]+\}", "x", url)
        body = {"department_id": "someone-elses", "role": "admin", "status": "assigned", "zz_injected": 1}
        r = await clients[service].request(method, url, json=body, headers=admin)
        fields = {e["field"] for e in r.json().get("errors", [])} if r.status_code == 422 else set()
        if r.status_code != 422 or "body.zz_injected" not in fields or "body.role" not in fields:
            failures.append(f"{service} {method} {path}: {r.status_code} {r.text[:300]}")
    assert not failures, "\n".join(failures)


@pytest.mark.kafka
async def test_a_policy_pack_with_an_undeclared_field_is_refused(
    platform: tuple[dict[str, FastAPI], dict[str, httpx.AsyncClient]],
) -> None:
    _, clients = platform
    pack = yaml.safe_load(DEFAULT_PACK_PATH.read_text())
    pack["version"] = "mass-assignment"
    pack["zz_injected"] = True
    pack["rules"][0]["zz_rule_injected"] = True
    admin = {"Authorization": f"Bearer {make_token('admin', subject='mass-pack')}"}
    r = await clients["policy"].post("/v1/policies", json=pack, headers=admin)
    assert r.status_code == 422, r.text
    reasons = " ".join(f"{e['field']} {e['reason']}" for e in r.json()["errors"])
    assert "zz_injected" in reasons, reasons
    assert "zz_rule_injected" in reasons, reasons


@pytest.mark.kafka
async def test_a_batch_item_with_an_injected_field_is_rejected_alone(
    platform: tuple[dict[str, FastAPI], dict[str, httpx.AsyncClient]],
) -> None:
    _, clients = platform
    system = {"Authorization": f"Bearer {make_token('agency_system', subject='mass-batch')}"}
    post = {
        "platform": "x",
        "external_id": "mass-1",
        "account": "@Agency",
        "text": "hello",
        "author": {"id": "1", "handle": "h"},
        "created_at": "2026-11-26T09:00:00+11:00",
    }
    injected = {**post, "external_id": "mass-2", "duplicate_of": "x", "author": {"id": "2", "role": "admin"}}
    r = await clients["ingest"].post("/v1/posts:batch", json={"posts": [post, injected]}, headers=system)
    assert r.status_code == 207, r.text
    first, second = r.json()["items"]
    assert first["status"] == "accepted"
    assert second["status"] == "rejected"
    fields = {e["field"] for e in second["problem"]["errors"]}
    assert {"body.posts.1.duplicate_of", "body.posts.1.author.role"} <= fields, fields


def test_no_response_schema_has_internal_or_raw_author_fields() -> None:
    problems = []
    for service, spec in SPECS.items():
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                for where, schema in response_schemas(operation):
                    for at, name, obj in object_schemas(spec, schema, "response"):
                        for prop in obj["properties"]:
                            if INTERNAL.search(prop) and prop not in INTERNAL_ALLOWED:
                                problems.append(f"{service} {method} {path} {where}: {at}.{prop}")
                            if prop in RAW_AUTHOR and name != "AuthorRead":
                                problems.append(f"{service} {method} {path} {where}: raw author {at}.{prop}")
                        if name == "AuthorRead" and not at.endswith("response.author"):
                            problems.append(f"{service} {method} {path}: AuthorRead at {at}")
    assert not problems, "\n".join(problems)


@pytest.mark.kafka
async def test_raw_author_details_only_for_agency_system_and_admin(
    platform: tuple[dict[str, FastAPI], dict[str, httpx.AsyncClient]],
) -> None:
    assert frozenset({Role.AGENCY_SYSTEM, Role.ADMIN}) == RAW_AUTHOR_ROLES
    _, clients = platform
    ingest = clients["ingest"]
    author = {"id": "author-9911", "handle": "jane_citizen_77", "display_name": "Jane Q Citizen"}
    post = {
        "platform": "x",
        "external_id": "raw-author-1",
        "account": "@Agency",
        "text": "The bus was late again",
        "author": author,
        "created_at": "2026-11-26T09:00:00+11:00",
    }
    system = {"Authorization": f"Bearer {make_token('agency_system', subject='raw-author')}"}
    created = await ingest.post("/v1/posts", json=post, headers=system)
    assert created.status_code == 202, created.text
    post_id = created.json()["id"]
    readers = [op for op in v1_operations() if op.key == ("ingest", "GET", "/v1/posts/{post_id}")]
    assert readers
    for role in Role:
        token = make_token(role.value, departments=("dept-a",), subject=f"raw-author-{role}")
        r = await ingest.get(f"/v1/posts/{post_id}", headers={"Authorization": f"Bearer {token}"})
        if role not in {Role.AGENCY_SYSTEM, Role.ADMIN, Role.OPS}:
            assert r.status_code == 403, (role, r.status_code)
            continue
        assert r.status_code == 200, (role, r.text)
        if role in RAW_AUTHOR_ROLES:
            assert r.json()["author"] == author
        else:
            assert r.json()["author"] is None
            for value in author.values():
                assert value not in r.text, (role, value)
            assert r.json()["author_ref"]
