from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TimelineEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_id: str
    type: str = Field(description="CloudEvents type, e.g. switchboard.post.received.v1.")
    source: str
    occurred_at: datetime = Field(
        description="When the fact happened (the payload's occurred_at, else the envelope time)."
    )
    recorded_at: datetime = Field(description="When metrics stored it.")
    attributes: dict[str, Any] = Field(description="The event's data without free text.")


class PostFactsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    platform: str | None
    priority: int | None
    department: str | None
    queue: str | None
    responder_id: str | None
    status: str | None
    received_at: datetime | None
    screened_at: datetime | None
    assigned_at: datetime | None
    accepted_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    assign_seconds: float | None
    first_response_seconds: float | None
    resolve_seconds: float | None
    assign_business_seconds: float | None
    first_response_business_seconds: float | None
    resolve_business_seconds: float | None
    first_response_due_at: datetime | None
    resolve_due_at: datetime | None
    warned_first_response: bool
    warned_resolve: bool
    breached_first_response: bool
    breached_resolve: bool
    sla_met: bool | None
    at_risk: bool
    transfers: int
    escalations: int
    declines: int
    releases: int
    approvals_requested: int
    approvals_rejected: int
    replies: int


class Timeline(BaseModel):
    post_id: str
    facts: PostFactsRead | None
    events: list[TimelineEntry]


GroupBy = Literal["department", "platform", "priority", "responder", "label"]


class DurationStats(BaseModel):
    count: int = Field(description="Posts of the group with this duration known.")
    p50: float | None = Field(description="Seconds; exact nearest-rank percentile.")
    p90: float | None
    p99: float | None


class TimelinessRow(BaseModel):
    group: str | None = Field(description="Value of the group_by dimension (null: not yet known).")
    bucket_start: datetime
    posts: int = Field(description="Posts received in the bucket.")
    answered: int = Field(description="Posts with a first response published.")
    time_to_assign: DurationStats
    time_to_first_response: DurationStats
    time_to_resolve: DurationStats
    business_time_to_assign: DurationStats
    business_time_to_first_response: DurationStats
    business_time_to_resolve: DurationStats
    sla_attainment_pct: float | None = Field(
        description="First-response target met, % of the posts whose outcome is known (null: none yet)."
    )
    sla_met: int
    sla_determined: int
    breaches: int = Field(description="Posts with a first-response or resolve breach.")


class TimelinessReport(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    group_by: GroupBy
    interval: Literal["hour", "day", "week"]
    percentile_method: str = "exact nearest-rank over every post in the group and bucket"
    rows: list[TimelinessRow]


class BacklogQueue(BaseModel):
    department: str | None
    queue: str | None
    waiting: int
    oldest_waiting_age_seconds: float | None
    open_assignments: int
    responders_with_open_work: int = Field(
        description="Distinct responders holding open work in this queue (presence lives in routing)."
    )
    at_risk: int = Field(description="Open items past an SLA warning point (breached ones included).")
    overdue: int = Field(description="Open items past a due time.")


class Backlog(BaseModel):
    as_of: datetime
    queues: list[BacklogQueue]


class VolumePoint(BaseModel):
    bucket_start: datetime
    count: int


class VolumeSeries(BaseModel):
    key: str
    points: list[VolumePoint]


class Volume(BaseModel):
    kind: Literal["department", "hashtag"]
    interval: Literal["hour", "day", "week"]
    series: list[VolumeSeries]


class SpikeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    key: str
    bucket_start: datetime
    count: int
    baseline_mean: float
    baseline_stddev: float
    threshold: float
    detected_at: datetime
    emitted: bool = Field(
        description="False for spikes of past hours found while catching up (not announced)."
    )


class Spikes(BaseModel):
    spikes: list[SpikeRead]


class ServiceStatus(BaseModel):
    name: str
    url: str
    status: Literal["up", "not_ready", "down"]
    checks: dict[str, str] = Field(description="The service's own /readyz checks.")
    error: str | None = Field(None, description="Why it is down (the exception type), if it is.")
    dead_letters_since_start: dict[str, dict[str, int]] = Field(
        description="switchboard_dead_letters_total of the running process: group -> topic -> count."
    )


class PartitionLag(BaseModel):
    service: str
    topic: str
    partition: str
    lag: int


class GroupLag(BaseModel):
    group: str
    total: int
    partitions: list[PartitionLag]


class DeadLetterCount(BaseModel):
    consumer_group: str | None
    original_topic: str | None
    count: int


class DeadLetterSummary(BaseModel):
    total: int | None = Field(description="null when metrics' own database could not be read.")
    by_group: list[DeadLetterCount]
    error: str | None = Field(None, description="Why the dead letters could not be counted.")


class OpsStatus(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded when any service is not up.")
    checked_at: datetime
    services: list[ServiceStatus]
    consumer_lag: list[GroupLag] = Field(description="From each service's switchboard_consumer_lag gauge.")
    dead_letters: DeadLetterSummary = Field(
        description="Every dead letter collected (durable across restarts)."
    )


class DeadLetterRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    dlq_topic: str
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    consumer_group: str | None
    error: str | None = Field(
        description="Why the handler gave up (inputs quoted by validation are removed)."
    )
    event_id: str | None
    event_type: str | None
    received_at: datetime
    replay_count: int


class DeadLetterPage(BaseModel):
    items: list[DeadLetterRead]
    next_before_id: int | None = Field(description="Pass as before_id for the next (older) page.")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="Why it is replayed (kept in the audit).")


class ReplayAccepted(BaseModel):
    dead_letter_id: int
    replay_id: str
    topic: str
    replay_count: int
