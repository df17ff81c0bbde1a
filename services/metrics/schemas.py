from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TimelineEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_id: str
    type: str = Field(description="CloudEvents type, e.g. switchboard.post.received.v1.")
    source: str
    occurred_at: datetime = Field(description="When the producing service recorded the fact.")
    recorded_at: datetime = Field(description="When metrics stored it.")
    attributes: dict[str, Any] = Field(description="The event's data without free text.")


class Timeline(BaseModel):
    post_id: str
    events: list[TimelineEntry]
