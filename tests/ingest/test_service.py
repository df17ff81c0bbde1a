"""Pure parts of accepting a post: canonicalisation, near-duplicate choice, the event, bad deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.normalise import DeliveryError, Rejected, parse_delivery
from services.ingest.schemas import PostCreate
from services.ingest.service import (
    EmptyAfterNormalisation,
    canonicalise,
    find_near_duplicate,
    received_event,
)
from shared.contracts.events import Platform
from tests.ingest.conftest import NOW, SECRET, fixture_bytes

BASE = {
    "platform": "webform",
    "external_id": "e1",
    "account": "contact",
    "text": "The  bins were\u200b missed #Bins",
    "author": {"id": "a1", "handle": "secret-handle", "display_name": "Secret Name"},
    "created_at": "2026-11-26T09:00:00+11:00",
}


def post(**overrides: object) -> PostCreate:
    return PostCreate.model_validate({**BASE, **overrides})


class TestCanonicalise:
    def test_text_is_normalised_and_the_original_kept(self) -> None:
        c = canonicalise(data=post(), secret=SECRET, now=NOW)
        assert c.text == "The bins were missed #Bins"
        assert c.text_original == BASE["text"]
        assert c.hashtags == ["bins"]
        assert c.created_at == datetime(2026, 11, 25, 22, 0, tzinfo=UTC)

    def test_id_is_a_uuid7_from_now(self) -> None:
        c = canonicalise(data=post(), secret=SECRET, now=NOW)
        assert c.id[14] == "7"
        assert int(c.id.replace("-", "")[:12], 16) == int(NOW.timestamp() * 1000)

    def test_only_invisible_text_is_rejected(self) -> None:
        with pytest.raises(EmptyAfterNormalisation):
            canonicalise(data=post(text="\u200b \u2060"), secret=SECRET, now=NOW)

    def test_same_text_in_another_case_has_the_same_near_duplicate_key(self) -> None:
        a = canonicalise(data=post(), secret=SECRET, now=NOW)
        b = canonicalise(
            data=post(external_id="e2", text="THE BINS WERE MISSED #bins"), secret=SECRET, now=NOW
        )
        assert (a.author_ref, a.text_hash) == (b.author_ref, b.text_hash)


class TestEvent:
    def test_the_event_never_carries_raw_author_details(self) -> None:
        c = canonicalise(data=post(), secret=SECRET, now=NOW)
        dumped = received_event(c, duplicate_of=None).model_dump_json()
        for raw in ("a1", "secret-handle", "Secret Name"):
            assert f'"{raw}"' not in dumped
        assert c.author_ref in dumped

    def test_the_event_carries_the_canonical_fields_and_the_duplicate_flag(self) -> None:
        c = canonicalise(data=post(), secret=SECRET, now=NOW)
        event = received_event(c, duplicate_of="first-id")
        assert event.duplicate_of == "first-id"
        assert event.hashtags == ["bins"]
        assert event.language == c.language


class TestNearDuplicate:
    def test_earliest_original_within_the_window(self) -> None:
        c = canonicalise(data=post(), secret=SECRET, now=NOW)
        t = c.created_at
        originals = [(t - timedelta(minutes=30), "b"), (t - timedelta(minutes=50), "a")]
        assert find_near_duplicate(post=c, originals=originals, window=timedelta(hours=1)) == "a"

    def test_outside_the_window_is_not_a_duplicate(self) -> None:
        c = canonicalise(data=post(), secret=SECRET, now=NOW)
        originals = [(c.created_at - timedelta(hours=2), "a")]
        assert find_near_duplicate(post=c, originals=originals, window=timedelta(hours=1)) is None


class TestBadDeliveries:
    def test_wrong_shape_names_the_json_path(self) -> None:
        with pytest.raises(DeliveryError) as info:
            parse_delivery(Platform.FACEBOOK, b'{"object": "page", "entry": [{"time": 1}]}', account=None)
        assert [e.field for e in info.value.errors] == ["body.entry.0.id"]

    def test_malformed_json(self) -> None:
        with pytest.raises(DeliveryError) as info:
            parse_delivery(Platform.REDDIT, b'{"kind": ', account=None)
        assert info.value.errors[0].field == "body"

    def test_a_payload_without_the_account_needs_the_query_parameter(self) -> None:
        with pytest.raises(DeliveryError) as info:
            parse_delivery(Platform.BLUESKY, fixture_bytes("bluesky_jetstream.json"), account=None)
        assert info.value.errors[0].field == "query.account"

    def test_one_bad_item_is_rejected_alone(self) -> None:
        body = fixture_bytes("facebook_feed.json").replace(
            b'"created_time": 1795644000,', b'"created_time": "soon",', 1
        )
        items = parse_delivery(Platform.FACEBOOK, body, account=None)
        assert isinstance(items[0], Rejected)
        assert items[0].errors[0].field == "created_at"
        assert isinstance(items[1], PostCreate)

    def test_an_email_without_message_id(self) -> None:
        with pytest.raises(DeliveryError, match="Message-ID"):
            parse_delivery(Platform.EMAIL, b"From: a@b.example\r\n\r\nhello", account="x@y.example")
