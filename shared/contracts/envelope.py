"""CloudEvents 1.0 structured-mode JSON envelope.

Every Kafka message value is one envelope: ``specversion, id, source, type, time, subject, datacontenttype,
data``. ``subject`` is the post id and is also the Kafka key. ``type`` names the event and its version
(``switchboard.post.received.v1``) and selects the pydantic model of ``data``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

EVENT_TYPE_PREFIX = "switchboard."


class EventModel(BaseModel):
    """Base of every event payload. Subclasses declare their CloudEvents type and topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    topic: ClassVar[str]

    def subject(self) -> str:
        """The post id this event is about (Kafka key and CloudEvents subject)."""
        raise NotImplementedError


E = TypeVar("E", bound=EventModel)


class Envelope(BaseModel, Generic[E]):
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(min_length=1, max_length=200)
    time: datetime
    subject: str = Field(min_length=1, max_length=200)
    datacontenttype: Literal["application/json"] = "application/json"
    data: E


class RawEnvelope(BaseModel):
    """The envelope with ``data`` left as a JSON object: used to route by ``type`` before decoding it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(min_length=1, max_length=200)
    time: datetime
    subject: str = Field(min_length=1, max_length=200)
    datacontenttype: str = "application/json"
    data: dict[str, Any]


class UnknownEventType(ValueError):
    pass


def new_event(
    data: E, *, source: str, event_id: str | None = None, time: datetime | None = None
) -> Envelope[E]:
    # Parametrise with the concrete class so that serialisation includes every field of ``data``.
    model: Any = Envelope[type(data)]  # type: ignore[misc]
    envelope = model(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=data.event_type,
        time=time or datetime.now(UTC),
        subject=data.subject(),
        data=data,
    )
    return cast(Envelope[E], envelope)


def decode_envelope(raw: bytes, registry: dict[str, type[EventModel]]) -> Envelope[EventModel]:
    """Parse one message value. Raises ``ValidationError`` or ``UnknownEventType`` for poison messages."""
    head = RawEnvelope.model_validate_json(raw)
    model = registry.get(head.type)
    if model is None:
        raise UnknownEventType(f"unknown event type {head.type!r}")
    data = model.model_validate(head.data)
    return Envelope[EventModel](
        id=head.id, source=head.source, type=head.type, time=head.time, subject=head.subject, data=data
    )


__all__ = [
    "Envelope",
    "EventModel",
    "RawEnvelope",
    "UnknownEventType",
    "ValidationError",
    "decode_envelope",
    "new_event",
]
