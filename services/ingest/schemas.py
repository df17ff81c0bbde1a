from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.events import Platform


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="The author's id on the platform.")
    handle: str | None = Field(None, max_length=200)


class PostCreate(BaseModel):
    """A post already in canonical shape, sent by an agency system."""

    model_config = ConfigDict(extra="forbid")

    platform: Platform
    external_id: str = Field(min_length=1, max_length=200, description="The post's id on its platform.")
    account: str = Field(min_length=1, max_length=200, description="The agency account that was addressed.")
    text: str = Field(min_length=1, max_length=40_000)
    author: AuthorIn
    created_at: AwareDatetime = Field(description="When the post was made, with a time zone.")
    visibility: Literal["public", "private"] = "public"
    conversation_id: str | None = Field(None, max_length=200)
    in_reply_to: str | None = Field(None, max_length=200)


class PostAccepted(BaseModel):
    id: str = Field(description="Switchboard post id (UUIDv7).")
    duplicate: bool = Field(description="True when this (platform, external_id) was accepted before.")


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    platform: Platform
    external_id: str
    account: str
    author_ref: str
    text: str
    visibility: Literal["public", "private"]
    conversation_id: str | None
    in_reply_to: str | None
    created_at: datetime
    received_at: datetime
