"""HTTP request and response models. Inputs forbid unknown fields and bound every size."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.policy.pack import Direction, Jurisdiction, Mode
from shared.contracts import Platform
from shared.inputs import JsonAwareDatetime, JsonBool

MAX_TEXT = 20_000


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("needs a time zone offset, e.g. 2026-11-26T09:00:00+11:00")
    return value


AwareDatetime = Annotated[datetime | None, AfterValidator(_aware)]


class FindingRead(BaseModel):
    rule_id: str
    label: str
    severity: str
    action: str | None = None
    start: int | None = None
    end: int | None = None


class ScreeningRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    post_id: str
    policy_version: str
    labels: list[str]
    findings: list[FindingRead]
    risk: str
    priority: int
    redacted_text: str
    failed_rules: list[str] = Field(default_factory=list)
    screened_at: datetime


class MediaIn(_Input):
    type: Literal["image", "gif", "video", "audio"]
    alt_text: str | None = Field(None, max_length=5000)
    captions: JsonBool = Field(False, description="A video has a captions track.")
    decorative: JsonBool = Field(False, description="A purely decorative image needs no alt text.")
    url: str | None = Field(None, max_length=2000)


class CheckCreate(_Input):
    """A draft reply or post to check before it is published."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    platform: Platform
    visibility: Literal["public", "private"] = "public"
    media: list[MediaIn] = Field(default_factory=list, max_length=10)
    in_reply_to_post_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The inbound post replied to; its screening labels apply.",
    )
    department: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="The department the reply is for: the checker must belong to it (OUT-01).",
    )


class Span(BaseModel):
    start: int
    end: int


class CheckFinding(BaseModel):
    rule_id: str
    label: str
    severity: str
    action: str
    message: str = Field(description="Plain-English explanation of what was found (never the value itself).")
    span: Span | None = Field(
        None, description="Character offsets in the text; absent for whole-message rules."
    )
    suggestion: str | None = Field(None, description="How to fix it, where there is a fix.")
    source: str = Field(description="The law or guidance the rule implements.")


class CheckRead(BaseModel):
    check_id: str
    decision: Literal["allow", "review", "block"] = Field(
        description="The strongest action of the findings: block > review (review, redact, escalate) > allow."
    )
    findings: list[CheckFinding]
    policy_version: str
    failed_rules: list[str] = Field(default_factory=list)
    active_modes: list[str] = Field(default_factory=list)
    checked_at: datetime


class PolicyRead(BaseModel):
    policy_version: str
    name: str
    version: str
    jurisdiction: str
    rule_count: int
    builtin: bool
    active: bool
    created_by: str | None = None
    created_at: datetime | None = None


class ActivateRequest(_Input):
    reason: str = Field(min_length=1, max_length=500, description="Why this version goes live (audited).")


class ActivationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    policy_version: str
    activated_by: str
    reason: str
    activated_at: datetime


class EvaluateItem(_Input):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    direction: Direction = "inbound"
    platform: Platform | None = None
    visibility: Literal["public", "private"] = "public"
    media: list[MediaIn] = Field(default_factory=list, max_length=10)
    reply_to_labels: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    modes: list[Mode] | None = Field(
        None, max_length=2, description="Modes to assume; the current ones if absent."
    )


class EvaluateRequest(_Input):
    items: list[EvaluateItem] = Field(min_length=1, max_length=100)


class EvaluateResult(BaseModel):
    labels: list[str]
    findings: list[CheckFinding]
    failed_rules: list[str]
    decision: str | None = None
    risk: str | None = None
    priority: int | None = None
    redacted_text: str | None = None


class EvaluateResponse(BaseModel):
    policy_version: str
    results: list[EvaluateResult]


class ModeSet(_Input):
    mode: Mode
    jurisdiction: Jurisdiction | Literal["ALL"] = "CTH"
    active: JsonBool
    starts_at: JsonAwareDatetime | None = None
    ends_at: JsonAwareDatetime | None = None
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _ordered(self) -> ModeSet:
        if self.starts_at is not None and self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ModeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    mode: str
    jurisdiction: str
    active: bool
    starts_at: datetime | None
    ends_at: datetime | None
    changed_by: str
    reason: str
    changed_at: datetime
