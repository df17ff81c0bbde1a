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
    action: Literal["allow", "warn", "redact", "review", "block", "escalate"] | None = Field(
        None, description="What the policy pack says to do about the finding (added in policy pack engine)."
    )
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
    redacted_text: str = Field(max_length=40_000, description="The text with personal information masked.")
    crisis: bool = Field(False, description="A crisis label (self_harm, threat, emergency) is set.")
    failed_rules: list[str] = Field(
        default_factory=list, max_length=300, description="Rules that could not run (the others still did)."
    )
    platform: Platform
    account: str = Field(max_length=200)
    author_ref: str = Field(max_length=128)
    visibility: Literal["public", "private"] = "public"
    duplicate_of: str | None = Field(None, max_length=64)
    screened_at: datetime


class _AssignmentEvent(_Event):
    """Common to every event of an assignment's life. ``post_received_at`` lets metrics measure wall-clock
    durations without joining topics; ``business_seconds_since_received`` is the same span in the
    department's business time (its calendar lives in routing), set on events that end a measured span."""

    assignment_id: str = Field(max_length=64)
    department: str = Field(max_length=100)
    queue: str = Field(max_length=100)
    responder_id: str | None = Field(None, max_length=100)
    priority: int = Field(ge=1, le=4, description="1 is the most urgent.")
    post_received_at: datetime | None = None
    occurred_at: datetime
    business_seconds_since_received: float | None = Field(None, ge=0)


class AssignmentCreatedV1(_AssignmentEvent):
    """Routing decided where a post goes: offered to a responder, or waiting in a queue."""

    event_type: ClassVar[str] = "switchboard.assignment.created.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS

    status: Literal["waiting", "offered", "assigned"]
    rule_id: str = Field(max_length=100)
    ruleset_version: str = Field(max_length=64)
    labels: list[str] = Field(default_factory=list, max_length=200)
    platform: Platform | None = None
    sla_policy: str | None = Field(None, max_length=100)
    first_response_due_at: datetime | None = None
    resolve_due_at: datetime | None = None
    grouped_with: str | None = Field(
        None, max_length=64, description="Assignment a near-duplicate joined instead of taking a responder."
    )


class AssignmentOfferedV1(_AssignmentEvent):
    event_type: ClassVar[str] = "switchboard.assignment.offered.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS

    offer_expires_at: datetime


class AssignmentAcceptedV1(_AssignmentEvent):
    """A responder took the post: the end of 'time to assign'."""

    event_type: ClassVar[str] = "switchboard.assignment.accepted.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS


class AssignmentDeclinedV1(_AssignmentEvent):
    event_type: ClassVar[str] = "switchboard.assignment.declined.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS

    reason: Literal["declined", "offer_expired"]


class AssignmentReleasedV1(_AssignmentEvent):
    """The responder gave the post back to the queue."""

    event_type: ClassVar[str] = "switchboard.assignment.released.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS

    reason: str = Field(max_length=500)


class AssignmentTransferredV1(_AssignmentEvent):
    """Moved to another department or responder; ``department``/``responder_id`` are the new owners."""

    event_type: ClassVar[str] = "switchboard.assignment.transferred.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS

    from_department: str = Field(max_length=100)
    from_responder_id: str | None = Field(None, max_length=100)
    reason: str = Field(max_length=500)


class AssignmentEscalatedV1(_AssignmentEvent):
    event_type: ClassVar[str] = "switchboard.assignment.escalated.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS

    trigger: Literal["sla_warning", "sla_breach", "manual"]
    action: Literal["raise_priority", "reassign_supervisors", "notify"]
    previous_priority: int = Field(ge=1, le=4)


class AssignmentAwaitingPublicV1(_AssignmentEvent):
    """Waiting for the public's answer: SLA clocks pause until ``AssignmentResumedV1``."""

    event_type: ClassVar[str] = "switchboard.assignment.awaiting_public.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS


class AssignmentResumedV1(_AssignmentEvent):
    event_type: ClassVar[str] = "switchboard.assignment.resumed.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS


class AssignmentResolvedV1(_AssignmentEvent):
    """Done: the end of 'time to resolve'."""

    event_type: ClassVar[str] = "switchboard.assignment.resolved.v1"
    topic: ClassVar[str] = Topic.ASSIGNMENTS

    outcome: str = Field(max_length=100)


class ReplyApprovalRequestedV1(_AssignmentEvent):
    """Policy said 'review': a supervisor of the department must approve the reply before it goes out."""

    event_type: ClassVar[str] = "switchboard.reply.approval_requested.v1"
    topic: ClassVar[str] = Topic.REPLIES

    reply_id: str = Field(max_length=64)
    approval_id: str = Field(max_length=64)
    check_id: str = Field(max_length=64)


class ReplyApprovalDecidedV1(_AssignmentEvent):
    event_type: ClassVar[str] = "switchboard.reply.approval_decided.v1"
    topic: ClassVar[str] = Topic.REPLIES

    reply_id: str = Field(max_length=64)
    approval_id: str = Field(max_length=64)
    decision: Literal["approved", "rejected"]
    supervisor_id: str = Field(max_length=100)


class ReplyPublishedV1(_AssignmentEvent):
    """A policy-checked reply was handed to the publisher. The first one ends 'time to first response'."""

    event_type: ClassVar[str] = "switchboard.reply.published.v1"
    topic: ClassVar[str] = Topic.REPLIES

    reply_id: str = Field(max_length=64)
    check_id: str = Field(max_length=64)
    policy_version: str = Field(max_length=64)
    first_response: bool


class _SlaEvent(_AssignmentEvent):
    target: Literal["first_response", "resolve"]
    due_at: datetime
    sla_policy: str = Field(max_length=100)


class SlaWarningV1(_SlaEvent):
    """The warning point (a configured fraction of the target) passed without the target being met."""

    event_type: ClassVar[str] = "switchboard.sla.warning.v1"
    topic: ClassVar[str] = Topic.SLA


class SlaBreachedV1(_SlaEvent):
    event_type: ClassVar[str] = "switchboard.sla.breached.v1"
    topic: ClassVar[str] = Topic.SLA


class VolumeSpikeV1(EventModel):
    """Inbound volume of a department or hashtag jumped far above its recent baseline (metrics detects it).

    Not about one post: the Kafka key and CloudEvents subject are ``<kind>:<key>`` (``department:transport``).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    event_type: ClassVar[str] = "switchboard.volume.spike.v1"
    topic: ClassVar[str] = Topic.VOLUME_SPIKES

    spike_id: str = Field(max_length=64)
    kind: Literal["department", "hashtag"]
    key: str = Field(min_length=1, max_length=100)
    bucket_start: datetime = Field(description="Start of the hour whose inbound count spiked.")
    interval_seconds: int = Field(3600, ge=60)
    count: int = Field(ge=0)
    baseline_mean: float = Field(ge=0, description="Mean count of the baseline hours before the bucket.")
    baseline_stddev: float = Field(ge=0)
    threshold: float = Field(ge=0, description="The count at which the bucket became a spike.")
    detected_at: datetime

    def subject(self) -> str:
        return f"{self.kind}:{self.key}"


EVENT_TYPES: dict[str, type[EventModel]] = {
    model.event_type: model
    for model in (
        PostReceivedV1,
        PostScreenedV1,
        AssignmentCreatedV1,
        AssignmentOfferedV1,
        AssignmentAcceptedV1,
        AssignmentDeclinedV1,
        AssignmentReleasedV1,
        AssignmentTransferredV1,
        AssignmentEscalatedV1,
        AssignmentAwaitingPublicV1,
        AssignmentResumedV1,
        AssignmentResolvedV1,
        ReplyApprovalRequestedV1,
        ReplyApprovalDecidedV1,
        ReplyPublishedV1,
        SlaWarningV1,
        SlaBreachedV1,
        VolumeSpikeV1,
    )
}
