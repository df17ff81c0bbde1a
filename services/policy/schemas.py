from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class FindingRead(BaseModel):
    rule_id: str
    label: str
    severity: str
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
    screened_at: datetime
