"""Ops helpers without I/O: reading Prometheus text, dead-letter rows, replay headers, error redaction."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from services.metrics.ops import dead_letter_values, parse_service_metrics, redact_error, replay_headers

EXPOSITION = """\
# HELP switchboard_consumer_lag Messages behind the partition end.
# TYPE switchboard_consumer_lag gauge
switchboard_consumer_lag{group="policy.screening",partition="0",topic="posts.received.v1"} 5.0
switchboard_consumer_lag{group="policy.screening",partition="1",topic="posts.received.v1"} 0.0
# HELP switchboard_dead_letters_total Messages sent to a dead-letter topic.
# TYPE switchboard_dead_letters_total counter
switchboard_dead_letters_total{group="policy.screening",topic="posts.received.v1"} 2.0
switchboard_dead_letters_created{group="policy.screening",topic="posts.received.v1"} 1.7e9
"""


def test_lag_and_dead_letters_are_read_from_the_exposition_text():
    lag, dead = parse_service_metrics(EXPOSITION)
    assert lag == {"policy.screening": {"posts.received.v1": {"0": 5, "1": 0}}}
    assert dead == {"policy.screening": {"posts.received.v1": 2}}


def test_validation_errors_lose_the_quoted_input():
    error = (
        "ValidationError: 1 validation error for PostReceivedV1\ntext\n  String should have at most 40000 "
        "characters [type=string_too_long, input_value='Call me on 0412 345 678', input_type=str]"
    )
    redacted = redact_error(error)
    assert "0412" not in redacted
    assert "input_value=<redacted>, input_type=str]" in redacted


def record(value: bytes, headers: list[tuple[str, bytes]]) -> ConsumerRecord:
    return ConsumerRecord(
        topic="posts.received.v1.dlq.policy.screening",
        partition=1,
        offset=42,
        timestamp=0,
        timestamp_type=0,
        key=b"post-1",
        value=value,
        checksum=None,
        serialized_key_size=6,
        serialized_value_size=len(value),
        headers=headers,
    )


def test_dead_letter_row_from_headers_and_envelope_head():
    now = datetime(2026, 11, 26, tzinfo=UTC)
    headers = [
        ("ce_type", b"switchboard.post.received.v1"),
        ("dlq_error", b"KeyError: 'x'"),
        ("dlq_original_topic", b"posts.received.v1"),
        ("dlq_original_partition", b"1"),
        ("dlq_original_offset", b"7"),
        ("dlq_consumer_group", b"policy.screening"),
    ]
    row = dead_letter_values(
        record(b'{"id": "e1", "type": "switchboard.post.received.v1"}', headers), now=now
    )
    assert (row["original_topic"], row["original_partition"], row["original_offset"]) == (
        "posts.received.v1",
        1,
        7,
    )
    assert (row["consumer_group"], row["event_id"], row["event_type"]) == (
        "policy.screening",
        "e1",
        row["event_type"],
    )
    assert (row["dlq_partition"], row["dlq_offset"], row["key"]) == (1, 42, "post-1")


def test_garbage_value_and_missing_headers_still_make_a_row():
    row = dead_letter_values(record(b"\xff not json", []), now=datetime(2026, 11, 26, tzinfo=UTC))
    assert row["event_id"] is None
    assert row["original_topic"] is None
    assert row["original_offset"] is None


def test_replay_headers_drop_dead_letter_bookkeeping():
    out = replay_headers(
        {"ce_type": "t", "correlation_id": "c", "dlq_error": "boom", "dlq_attempts": "3"}, replay_id="r"
    )
    assert out == {"ce_type": "t", "correlation_id": "c", "dlq_replay_id": "r"}
