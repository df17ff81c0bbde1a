"""Request and response models of ingest's HTTP API. Input models forbid unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.contracts.events import Platform
from shared.errors import Problem
from shared.inputs import JsonAwareDatetime

MAX_TEXT_CHARS = 40_000
#: HTML or MIME markup around the text can be longer than the text itself.
MAX_TEXT_ORIGINAL_CHARS = 200_000
MAX_BATCH = 500

ShortStr = Annotated[str, StringConstraints(max_length=200)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Visibility = Literal["public", "private"]


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="The author's id on the platform.")
    handle: str | None = Field(None, max_length=200, description="@handle, username or e-mail address.")
    display_name: str | None = Field(None, max_length=200)


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["image", "video", "gif", "audio", "link", "other"]
    url: Url | None = None
    alt_text: str | None = Field(None, max_length=2000)


class PostCreate(BaseModel):
    """A post in canonical shape: sent by an agency system, or produced from a platform's webhook."""

    model_config = ConfigDict(extra="forbid")

    platform: Platform
    external_id: str = Field(min_length=1, max_length=200, description="The post's id on its platform.")
    account: str = Field(min_length=1, max_length=200, description="The agency account that was addressed.")
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        description="The post's text as plain text; ingest normalises it (NFC, whitespace, invisibles).",
    )
    text_original: str | None = Field(
        None,
        max_length=MAX_TEXT_ORIGINAL_CHARS,
        description="The text exactly as the platform gave it (e.g. HTML); defaults to `text`.",
    )
    author: AuthorIn
    created_at: JsonAwareDatetime = Field(description="When the post was made, with a time zone.")
    visibility: Visibility = "public"
    conversation_id: str | None = Field(None, max_length=200)
    in_reply_to: str | None = Field(None, max_length=200, description="Platform id of the post replied to.")
    url: Url | None = Field(None, description="Permalink of the post on its platform.")
    language: str | None = Field(
        None, min_length=2, max_length=8, description="The platform's own language tag, if any."
    )
    urls: list[Url] | None = Field(None, max_length=100, description="Defaults to the urls found in text.")
    hashtags: list[ShortStr] | None = Field(None, max_length=100, description="Defaults to those in text.")
    mentions: list[ShortStr] | None = Field(None, max_length=100, description="Defaults to those in text.")
    media: list[MediaIn] = Field(default_factory=list, max_length=50)


class PostAccepted(BaseModel):
    id: str = Field(description="Switchboard post id (UUIDv7).")
    duplicate: bool = Field(description="True when this (platform, external_id) was accepted before.")
    duplicate_of: str | None = Field(
        None, description="Set when the post repeats the same author's text within the near-duplicate window."
    )


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items are validated one by one by the endpoint so that one bad item never rejects the others.
    posts: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Canonical posts (each the body of POST /v1/posts); a bad item is rejected alone.",
    )


class ItemResult(BaseModel):
    index: int = Field(description="Position of the item in the request (or in the webhook delivery).")
    status: Literal["accepted", "duplicate", "rejected", "skipped"]
    id: str | None = None
    duplicate_of: str | None = None
    external_id: str | None = None
    reason: str | None = Field(None, description="Why the item was skipped (it is not a post).")
    problem: Problem | None = Field(None, description="Why the item was rejected.")


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    skipped: int = 0
    items: list[ItemResult]


class AuthorRead(BaseModel):
    id: str
    handle: str | None
    display_name: str | None


class MediaRead(BaseModel):
    type: str
    url: str | None = None
    alt_text: str | None = None


class PostRead(BaseModel):
    id: str
    platform: Platform
    external_id: str
    account: str
    author_ref: str
    author: AuthorRead | None = Field(
        None, description="Raw author details: only for agency_system, supervisor and admin roles."
    )
    text: str
    text_original: str
    language: str
    language_confidence: float
    urls: list[str]
    hashtags: list[str]
    mentions: list[str]
    media: list[MediaRead]
    visibility: Visibility
    conversation_id: str | None
    in_reply_to: str | None
    url: str | None
    duplicate_of: str | None
    created_at: datetime
    received_at: datetime
