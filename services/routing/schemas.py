from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


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
