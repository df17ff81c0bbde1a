"""Request and response bodies. Inputs forbid unknown fields and bound every string, list and number."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.routing import sla
from shared.inputs import JsonBool, JsonDate, JsonFloat, JsonInt

Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
Window = Annotated[list[Annotated[str, Field(pattern=r"^\d{2}:\d{2}$")]], Field(min_length=2, max_length=2)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DepartmentWrite(_In):
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(max_length=64, description="IANA zone, e.g. Australia/Sydney")
    hours: dict[str, Annotated[list[Window], Field(max_length=6)]] = Field(
        max_length=7,
        description='Business windows per weekday: {"mon": [["08:30", "12:00"], ["13:00", "17:00"]]}',
    )
    state: Literal["ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"] | None = Field(
        None, description="Australian state/territory whose public holidays close the department."
    )
    closures: list[JsonDate] = Field(default_factory=list, max_length=366, description="Extra closure days.")
    sla_policy: Id = "standard"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("not a known IANA time zone") from exc
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
        try:
            sla.parse_hours({k: [(w[0], w[1]) for w in ws] for k, ws in v.items()})
        except ValueError as exc:
            raise ValueError(str(exc)) from exc
        return v


class DepartmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    timezone: str
    hours: dict[str, Any]
    state: str | None
    closures: list[str]
    sla_policy: str
    updated_at: datetime


class SlaPolicyWrite(_In):
    clock: Literal["business", "wall"] = "business"
    first_response_seconds: JsonInt = Field(ge=1, le=90 * 86_400)
    resolve_seconds: JsonInt = Field(ge=1, le=365 * 86_400)
    warning_fraction: JsonFloat = Field(
        0.75, gt=0, lt=1, description="Warn when this share of the target is used."
    )
    breach_action: Literal["raise_priority", "reassign_supervisors", "notify"] = "raise_priority"


class SlaPolicyRead(SlaPolicyWrite):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    name: str
    updated_at: datetime


class ResponderWrite(_In):
    name: str = Field(min_length=1, max_length=200)
    departments: list[Id] = Field(min_length=1, max_length=50)
    skills: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    languages: list[Annotated[str, Field(min_length=2, max_length=20)]] = Field(
        default_factory=list, max_length=20
    )
    capacity: JsonInt = Field(3, ge=0, le=100, description="Maximum open assignments.")
    status: Literal["available", "away", "offline"] = "offline"


class ResponderStatus(_In):
    status: Literal["available", "away", "offline"]


class ResponderRead(BaseModel):
    id: str
    name: str
    departments: list[str]
    skills: list[str]
    languages: list[str]
    capacity: int
    status: str
    load: int
    idle_since: datetime | None


class QueueWrite(_In):
    department: Id
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["standard", "crisis", "supervisors"] = "standard"
    required_skills: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20
    )


class QueueRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    department: str
    name: str
    kind: str
    required_skills: list[str]
    updated_at: datetime


class RuleSetWrite(_In):
    rules: list[dict[str, Any]] = Field(max_length=500, description="Ordered rules; the first match wins.")
    default: dict[str, Any] = Field(description="Target of posts no rule matches.")
    activate: JsonBool = True


class RuleSetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    rules: list[dict[str, Any]]
    default: dict[str, Any]
    active: bool
    created_by: str
    created_at: datetime


class PostSample(_In):
    """A post to dry-run the rules against (the screened fields rules can see)."""

    post_id: str = Field("sample", min_length=1, max_length=64)
    platform: Literal[
        "x", "facebook", "instagram", "mastodon", "bluesky", "reddit", "youtube", "email", "webform"
    ]
    account: str = Field("", max_length=200)
    visibility: Literal["public", "private"] = "public"
    author_ref: str = Field("sample", min_length=1, max_length=128)
    labels: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=200)
    text: str = Field("", max_length=40_000)
    risk: Literal["low", "medium", "high", "critical"] = "low"
    priority: JsonInt = Field(3, ge=1, le=4)


class EvaluateRequest(_In):
    posts: list[PostSample] = Field(min_length=1, max_length=100)


class EvaluateResult(BaseModel):
    post_id: str
    rule_id: str
    ruleset_version: str
    department: str
    queue: str
    priority: int
    required_skills: list[str]
    sla_policy: str | None


class EvaluateResponse(BaseModel):
    results: list[EvaluateResult]


class AssignmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    post_id: str
    department: str
    queue: str
    responder_id: str | None
    priority: int
    status: str
    rule_id: str
    ruleset_version: str
    created_at: datetime
    waiting_since: datetime | None = None
    offer_expires_at: datetime | None = None
    grouped_with: str | None = None
    sla_policy: str | None = None
    fr_due_at: datetime | None = Field(None, description="First-response deadline (None once met or paused).")
    rs_due_at: datetime | None = Field(
        None, description="Resolution deadline (None once resolved or paused)."
    )
    outcome: str | None = None


class QueueView(BaseModel):
    mine: list[AssignmentRead]
    waiting: list[AssignmentRead]


class DecisionRead(BaseModel):
    kind: str
    at: datetime
    explanation: dict[str, Any]


class ExplanationRead(BaseModel):
    assignment_id: str
    post_id: str
    rule_id: str
    ruleset_version: str
    status: str
    decisions: list[DecisionRead]


class ReleaseRequest(_In):
    reason: Reason


class TransferRequest(_In):
    department: Id | None = None
    responder_id: Id | None = None
    reason: Reason

    @model_validator(mode="after")
    def _one_target(self) -> TransferRequest:
        if self.department is None and self.responder_id is None:
            raise ValueError("give a department, a responder_id or both")
        return self


class ResolveRequest(_In):
    outcome: str = Field(min_length=1, max_length=100)


class Media(_In):
    """An attachment, as policy's check takes it (accessibility rules look at alt text and captions)."""

    url: str = Field(min_length=1, max_length=2000, pattern=r"^https://")
    type: Literal["image", "gif", "video", "audio"] = "image"
    alt_text: str | None = Field(None, max_length=5000)
    captions: JsonBool = Field(False, description="A video has a captions track.")
    decorative: JsonBool = Field(False, description="A purely decorative image needs no alt text.")


class ReplyCreate(_In):
    text: str = Field(min_length=1, max_length=5000)
    media: list[Media] = Field(default_factory=list, max_length=4)


class FindingRead(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rule_id: str
    severity: str
    message: str
    span: Any = None
    suggestion: str | None = None
    source: str | None = None


class ReplyRead(BaseModel):
    id: str
    assignment_id: str
    status: str
    check_id: str
    policy_version: str
    findings: list[dict[str, Any]]
    approval_id: str | None = None
    created_at: datetime
    published_at: datetime | None


class ApprovalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    reply_id: str
    assignment_id: str
    department: str
    status: str
    supervisor_id: str | None
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


class ApprovalDecision(_In):
    reason: Reason
