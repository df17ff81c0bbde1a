"""Versioned event payloads. A breaking change is a new class (``...V2``) on a new topic version.

Consumers are tolerant readers (unknown fields are ignored) so producers may add optional fields within a
version. Events never carry raw author details: only ``author_ref``, a keyed pseudonym made by ingest.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from shared.contracts.envelope import EventModel
from shared.contracts.topics import Topic


class Platform(StrEnum):
    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    REDDIT = "reddit"
    YOUTUBE = "youtube"
    EMAIL = "email"
    WEBFORM = "webform"


class _Event(EventModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    post_id: str = Field(min_length=1, max_length=64, description="Switchboard post id (UUIDv7).")

    def subject(self) -> str:
        return self.post_id


class PostMedia(EventModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["image", "video", "gif", "audio", "link", "other"]
    url: str | None = Field(None, max_length=2048)
    alt_text: str | None = Field(None, max_length=2000)


class PostReceivedV1(_Event):
    """A canonical post was accepted by ingest and stored."""

    event_type: ClassVar[str] = "switchboard.post.received.v1"
    topic: ClassVar[str] = Topic.POSTS_RECEIVED

    platform: Platform
    external_id: str = Field(max_length=200)
    account: str = Field(max_length=200, description="The agency account, page or address addressed.")
    author_ref: str = Field(max_length=128, description="HMAC pseudonym of platform + author id.")
    text: str = Field(max_length=40_000)
    visibility: Literal["public", "private"] = "public"
    conversation_id: str | None = Field(None, max_length=200)
    in_reply_to: str | None = Field(None, max_length=200)
    created_at: datetime
    received_at: datetime
    duplicate_of: str | None = Field(
        None,
        max_length=64,
        description="Set on a near-duplicate (same author_ref and text within ingest's window): the post id "
        "of the first one, so that routing can group a flood instead of assigning each copy.",
    )
    # Added by issue 3 (canonical post); optional with defaults so that older events still validate.
    language: str = Field("und", max_length=8, description="ISO 639-1 code detected offline, or 'und'.")
    language_confidence: float = Field(0.0, ge=0.0, le=1.0)
    urls: list[str] = Field(default_factory=list, max_length=100)
    hashtags: list[str] = Field(default_factory=list, max_length=100, description="Lower-cased, no '#'.")
    mentions: list[str] = Field(default_factory=list, max_length=100, description="Handles, no '@'.")
    media: list[PostMedia] = Field(default_factory=list, max_length=50)
    url: str | None = Field(None, max_length=2048, description="Permalink of the post on its platform.")


class ScreeningFinding(EventModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    rule_id: str = Field(max_length=100)
    label: str = Field(max_length=100)
    severity: Literal["info", "low", "medium", "high", "critical"]
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)


class PostScreenedV1(_Event):
    """Policy screened an inbound post."""

    event_type: ClassVar[str] = "switchboard.post.screened.v1"
    topic: ClassVar[str] = Topic.POSTS_SCREENED

    screening_id: str = Field(max_length=64)
    policy_version: str = Field(max_length=64)
    labels: list[str] = Field(default_factory=list, max_length=200)
    findings: list[ScreeningFinding] = Field(default_factory=list, max_length=500)
    risk: Literal["low", "medium", "high", "critical"]
    priority: int = Field(ge=1, le=4, description="1 is the most urgent.")
    redacted_text: str = Field(max_length=40_000)
    platform: Platform
    account: str = Field(max_length=200)
    author_ref: str = Field(max_length=128)
    visibility: Literal["public", "private"] = "public"
    duplicate_of: str | None = Field(None, max_length=64)
    screened_at: datetime


class AssignmentCreatedV1(_Event):
    """Routing placed a post in a department's queue, offered to a responder or waiting."""

    event_type: ClassVar[str] = "switchboard.assignment.created.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS

    assignment_id: str = Field(max_length=64)
    department: str = Field(max_length=100)
    queue: str = Field(max_length=100)
    responder_id: str | None = Field(None, max_length=100)
    priority: int = Field(ge=1, le=4)
    status: Literal["waiting", "offered", "assigned"]
    rule_id: str = Field(max_length=100)
    ruleset_version: str = Field(max_length=64)
    assigned_at: datetime


EVENT_TYPES: dict[str, type[EventModel]] = {
    model.event_type: model for model in (PostReceivedV1, PostScreenedV1, AssignmentCreatedV1)
}
