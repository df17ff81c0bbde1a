"""Event contracts: the only code the services share. Defined once, versioned; see docs/events.md."""

from shared.contracts.envelope import Envelope, EventModel, decode_envelope, new_event
from shared.contracts.events import (
    EVENT_TYPES,
    AssignmentCreatedV1,
    Platform,
    PostReceivedV1,
    PostScreenedV1,
    ScreeningFinding,
)
from shared.contracts.topics import ALL_TOPICS, Topic, dead_letter_topic

__all__ = [
    "ALL_TOPICS",
    "EVENT_TYPES",
    "AssignmentCreatedV1",
    "Envelope",
    "EventModel",
    "Platform",
    "PostReceivedV1",
    "PostScreenedV1",
    "ScreeningFinding",
    "Topic",
    "dead_letter_topic",
    "decode_envelope",
    "new_event",
]
