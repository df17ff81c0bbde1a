"""Topic names. Every event of one post is keyed by the post id, so a post's events stay ordered."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    POSTS_RECEIVED = "posts.received.v1"
    POSTS_SCREENED = "posts.screened.v1"
    ASSIGNMENTS = "assignments.v1"
    REPLIES = "replies.v1"
    SLA = "sla.v1"
    VOLUME_SPIKES = "volume.spikes.v1"


ALL_TOPICS: tuple[str, ...] = tuple(t.value for t in Topic)


def dead_letter_topic(topic: str, group: str) -> str:
    """Where a consumer group parks messages it could not handle: ``<topic>.dlq.<group>``."""
    return f"{topic}.dlq.{group}"
