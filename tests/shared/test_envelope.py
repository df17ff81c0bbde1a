from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from shared.contracts import EVENT_TYPES, PostScreenedV1, ScreeningFinding, decode_envelope, new_event
from shared.contracts.envelope import UnknownEventType

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def screened() -> PostScreenedV1:
    return PostScreenedV1(
        post_id="01a2161c-4e6d-78b9-9d31-1e8b62a71f78",
        screening_id="s1",
        policy_version="au-gov-1",
        labels=["pii:email"],
        findings=[
            ScreeningFinding(rule_id="pii.email", label="pii:email", severity="medium", start=3, end=9)
        ],
        risk="medium",
        priority=3,
        redacted_text="hi [pii:email]",
        platform="x",
        account="@agency",
        author_ref="abc",
        screened_at=NOW,
    )


class TestEnvelope:
    def test_is_cloudevents_structured_json_keyed_by_post_id(self) -> None:
        env = new_event(screened(), source="/switchboard/policy", time=NOW)
        doc = orjson.loads(env.model_dump_json())
        assert doc["specversion"] == "1.0"
        assert doc["type"] == "switchboard.post.screened.v1"
        assert doc["source"] == "/switchboard/policy"
        assert doc["subject"] == "01a2161c-4e6d-78b9-9d31-1e8b62a71f78"
        assert doc["datacontenttype"] == "application/json"
        assert doc["time"] == "2026-11-26T09:30:00Z"
        assert doc["id"]
        # Every field of the concrete payload is serialised, including nested models.
        assert doc["data"]["findings"][0]["rule_id"] == "pii.email"
        assert doc["data"]["redacted_text"] == "hi [pii:email]"

    def test_round_trips_through_bytes(self) -> None:
        env = new_event(screened(), source="/switchboard/policy", time=NOW)
        back = decode_envelope(env.model_dump_json().encode(), EVENT_TYPES)
        assert back.id == env.id
        assert back.data == env.data
        assert isinstance(back.data, PostScreenedV1)

    def test_unknown_type_is_rejected(self) -> None:
        env = new_event(screened(), source="/x", time=NOW)
        doc = orjson.loads(env.model_dump_json())
        doc["type"] = "switchboard.nope.v1"
        with pytest.raises(UnknownEventType):
            decode_envelope(orjson.dumps(doc), EVENT_TYPES)

    def test_invalid_payload_is_rejected(self) -> None:
        env = new_event(screened(), source="/x", time=NOW)
        doc = orjson.loads(env.model_dump_json())
        doc["data"]["priority"] = 9
        with pytest.raises(ValidationError):
            decode_envelope(orjson.dumps(doc), EVENT_TYPES)

    @pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"specversion": "0.3"}'])
    def test_garbage_is_rejected(self, raw: bytes) -> None:
        with pytest.raises(ValidationError):
            decode_envelope(raw, EVENT_TYPES)

    def test_consumers_tolerate_fields_added_within_a_version(self) -> None:
        env = new_event(screened(), source="/x", time=NOW)
        doc = orjson.loads(env.model_dump_json())
        doc["data"]["added_later"] = 1
        assert decode_envelope(orjson.dumps(doc), EVENT_TYPES).data == env.data

    def test_every_event_type_names_its_topic_and_version(self) -> None:
        for event_type, model in EVENT_TYPES.items():
            assert event_type.startswith("switchboard.")
            assert event_type.endswith(".v1")
            assert model.topic.endswith(".v1")
