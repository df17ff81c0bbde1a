"""Each platform's documented payload (tests/data/ingest, built from the schemas cited in docs/ingest.md)
becomes the canonical post we expect, field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.ingest.normalise import Skipped
from services.ingest.service import CanonicalPost, author_ref, text_hash
from shared.contracts.events import Platform
from tests.ingest.conftest import NOW, SECRET, normalise_fixture

# Language confidence comes from a statistical model: asserted as a range, not a number.
PROBABILISTIC = {"language_confidence"}


def check(post: CanonicalPost | Any, expected: dict[str, Any]) -> None:
    assert isinstance(post, CanonicalPost), post
    actual = dict(post.__dict__)
    assert 0.0 <= actual.pop("language_confidence") <= 1.0
    expected = {
        "id": "post-1",
        "received_at": NOW,
        "correlation_id": None,
        "author_ref": author_ref(
            secret=SECRET, platform=expected["platform"], author_id=expected["author_id"]
        ),
        "text_hash": text_hash(expected["text"]),
        **expected,
    }
    assert set(actual) | PROBABILISTIC == set(expected) | PROBABILISTIC, sorted(set(actual) ^ set(expected))
    for field, value in expected.items():
        assert actual[field] == value, f"{field}: {actual[field]!r} != {value!r}"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class TestX:
    def test_api_v2_tweet_with_includes_users_and_media(self) -> None:
        (post,) = normalise_fixture("x", "x_v2.json", account="@TransportNSW")
        check(
            post,
            {
                "platform": "x",
                "external_id": "1850000000000000101",
                "account": "@TransportNSW",
                "author_id": "2244994945",
                "author_handle": "DevPerson",
                "author_display_name": "Dev Person",
                "text": "@TransportNSW Is the M4 closed tonight? #M4 #Traffic https://t.co/abc123",
                "text_original": "@TransportNSW Is the M4 closed tonight? #M4 #Traffic https://t.co/abc123",
                "language": "en",
                "urls": ["https://example.org/m4-closure"],
                "hashtags": ["m4", "traffic"],
                "mentions": ["transportnsw"],
                "media": [
                    {
                        "type": "image",
                        "url": "https://pbs.twimg.com/media/abc.jpg",
                        "alt_text": "Traffic queue on the M4",
                    }
                ],
                "visibility": "public",
                "conversation_id": "1850000000000000001",
                "in_reply_to": "1850000000000000001",
                "url": "https://x.com/DevPerson/status/1850000000000000101",
                "created_at": utc(2026, 11, 25, 22, 0),
            },
        )

    def test_account_activity_tweet_create_events_skip_the_accounts_own_tweets(self) -> None:
        post, own = normalise_fixture("x", "x_account_activity.json")
        check(
            post,
            {
                "platform": "x",
                "external_id": "1850000000000000102",
                "account": "100000001",
                "author_id": "3333",
                "author_handle": "rider_one",
                "author_display_name": "Rider One",
                "text": "@TransportNSW the 370 bus never came #buses",
                "text_original": "@TransportNSW the 370 bus never came #buses",
                "language": "en",
                "urls": [],
                "hashtags": ["buses"],
                "mentions": ["transportnsw"],
                "media": [],
                "visibility": "public",
                "conversation_id": None,
                "in_reply_to": "1850000000000000050",
                "url": "https://x.com/rider_one/status/1850000000000000102",
                "created_at": utc(2026, 11, 25, 22, 5),
            },
        )
        assert own == Skipped("sent by the subscribed account itself", "1850000000000000103")


class TestFacebook:
    def test_page_feed_comment_and_visitor_post_become_posts_and_a_reaction_is_skipped(self) -> None:
        comment, visitor, reaction = normalise_fixture("facebook", "facebook_feed.json")
        check(
            comment,
            {
                "platform": "facebook",
                "external_id": "888_9001",
                "account": "555000111",
                "author_id": "7001",
                "author_handle": None,
                "author_display_name": "Citizen Kane",
                "text": "Why is the library closed on Sunday?",
                "text_original": "Why is the library closed on Sunday?",
                "language": "en",
                "urls": [],
                "hashtags": [],
                "mentions": [],
                "media": [],
                "visibility": "public",
                "conversation_id": "555000111_888",
                "in_reply_to": "555000111_888",
                "url": "https://www.facebook.com/888_9001",
                "created_at": utc(2026, 11, 25, 22, 0),
            },
        )
        check(
            visitor,
            {
                "platform": "facebook",
                "external_id": "555000111_889",
                "account": "555000111",
                "author_id": "7002",
                "author_handle": None,
                "author_display_name": "Visitor Vee",
                "text": "Great job on the new park! <3",
                "text_original": "Great job on the new park! <3",
                "language": "en",
                "urls": [],
                "hashtags": [],
                "mentions": [],
                "media": [],
                "visibility": "public",
                "conversation_id": "555000111_889",
                "in_reply_to": None,
                "url": "https://www.facebook.com/555000111_889",
                "created_at": utc(2026, 11, 25, 22, 1),
            },
        )
        assert isinstance(reaction, Skipped)


class TestInstagram:
    def test_comment_becomes_a_post_and_a_textless_mention_is_reported_as_skipped(self) -> None:
        comment, mention = normalise_fixture("instagram", "instagram.json")
        check(
            comment,
            {
                "platform": "instagram",
                "external_id": "17865799348089039",
                "account": "17841400000000001",
                "author_id": "232323232",
                "author_handle": "citizen.ig",
                "author_display_name": None,
                "text": "When will the pool reopen? #summer",
                "text_original": "When will the pool reopen? #summer",
                "language": "en",
                "urls": [],
                "hashtags": ["summer"],
                "mentions": [],
                "media": [],
                "visibility": "public",
                "conversation_id": "17900000000000001",
                "in_reply_to": "17865799348000000",
                "url": None,
                "created_at": utc(2026, 11, 25, 22, 0),
            },
        )
        assert isinstance(mention, Skipped)
        assert mention.external_id == "17865799348089040"


class TestMastodon:
    def test_mention_notification_html_becomes_text_with_links_mentions_tags_and_media(self) -> None:
        (post,) = normalise_fixture("mastodon", "mastodon_notification.json", account="@council@gov.example")
        assert isinstance(post, CanonicalPost)
        check(
            post,
            {
                "platform": "mastodon",
                "external_id": "109000000000000555",
                "account": "@council@gov.example",
                "author_id": "109000000000000001",
                "author_handle": "alice@social.example",
                "author_display_name": "Alice A.",
                "text": "@council the footpath on King St is broken & dangerous\n\n"
                "see https://photos.example/x #Footpaths",
                "text_original": post.text_original,
                "language": "en",
                "urls": ["https://photos.example/x"],
                "hashtags": ["footpaths"],
                "mentions": ["council@gov.example"],
                "media": [
                    {
                        "type": "image",
                        "url": "https://files.social.example/media/1.jpg",
                        "alt_text": "Cracked footpath",
                    }
                ],
                "visibility": "public",
                "conversation_id": None,
                "in_reply_to": None,
                "url": "https://social.example/@alice/109000000000000555",
                "created_at": utc(2026, 11, 25, 22, 10),
            },
        )
        assert post.text_original.startswith('<p><span class="h-card">')


class TestBluesky:
    def test_jetstream_post_facets_are_read_by_utf8_byte_offsets(self) -> None:
        post, like = normalise_fixture("bluesky", "bluesky_jetstream.json", account="council.gov.example")
        did = "did:plc:eygmaihciaxprqvxpfvl6flk"
        text = "Café closed? @council.gov.example see https://example.org/café #Roads"
        check(
            post,
            {
                "platform": "bluesky",
                "external_id": f"at://{did}/app.bsky.feed.post/3lbk2wmm5lc2u",
                "account": "council.gov.example",
                "author_id": did,
                "author_handle": None,
                "author_display_name": None,
                "text": text,
                "text_original": text,
                "language": "en",
                "urls": ["https://example.org/café"],
                "hashtags": ["roads"],
                "mentions": ["council.gov.example"],
                "media": [{"type": "image", "alt_text": "A closed shop"}],
                "visibility": "public",
                "conversation_id": "at://did:plc:council000000000000000/app.bsky.feed.post/3lbjroot",
                "in_reply_to": "at://did:plc:council000000000000000/app.bsky.feed.post/3lbjparent",
                "url": f"https://bsky.app/profile/{did}/post/3lbk2wmm5lc2u",
                "created_at": utc(2026, 11, 25, 22, 10),
            },
        )
        assert isinstance(like, Skipped)


class TestReddit:
    def test_listing_of_a_t1_comment_and_a_t3_self_post(self) -> None:
        comment, link = normalise_fixture("reddit", "reddit_listing.json")
        check(
            comment,
            {
                "platform": "reddit",
                "external_id": "t1_k1abcde",
                "account": "r/mycity",
                "author_id": "t2_9xyz1",
                "author_handle": "redditor_rae",
                "author_display_name": None,
                "text": "The bins on Elm St were missed again. photo",
                "text_original": "The bins on **Elm St** were missed again. [photo](https://i.example/bins.jpg)",
                "language": "en",
                "urls": ["https://i.example/bins.jpg"],
                "hashtags": [],
                "mentions": [],
                "media": [],
                "visibility": "public",
                "conversation_id": "t3_1h0abcd",
                "in_reply_to": "t3_1h0abcd",
                "url": "https://www.reddit.com/r/mycity/comments/1h0abcd/bin_collection/k1abcde/",
                "created_at": utc(2026, 11, 25, 22, 0),
            },
        )
        check(
            link,
            {
                "platform": "reddit",
                "external_id": "t3_1h0abcd",
                "account": "r/mycity",
                "author_id": "t2_8abc2",
                "author_handle": "poster_pat",
                "author_display_name": None,
                "text": "Bin collection this week?\n\n"
                "Anyone know if bins are collected on the public holiday? #bins",
                "text_original": "Bin collection this week?\n\n"
                "Anyone know if bins are collected on the public holiday? #bins",
                "language": "en",
                "urls": [],
                "hashtags": ["bins"],
                "mentions": [],
                "media": [],
                "visibility": "public",
                "conversation_id": "t3_1h0abcd",
                "in_reply_to": None,
                "url": "https://www.reddit.com/r/mycity/comments/1h0abcd/bin_collection/",
                "created_at": utc(2026, 11, 25, 21, 43, 20),
            },
        )


class TestYouTube:
    def test_comment_thread_top_level_comment_and_reply(self) -> None:
        top, reply = normalise_fixture("youtube", "youtube_comment_thread.json")
        check(
            top,
            {
                "platform": "youtube",
                "external_id": "UgzThread0001",
                "account": "UCagencychannel0001",
                "author_id": "UCviewer0001",
                "author_handle": "viewer_one",
                "author_display_name": "@viewer_one",
                "text": "Where can I get the form mentioned at 2:10?\nThanks",
                "text_original": "Where can I get the form mentioned at 2:10?<br>Thanks",
                "language": "en",
                "urls": [],
                "hashtags": [],
                "mentions": [],
                "media": [],
                "visibility": "public",
                "conversation_id": "UgzThread0001",
                "in_reply_to": None,
                "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ&lc=UgzThread0001",
                "created_at": utc(2026, 11, 25, 21, 0),
            },
        )
        check(
            reply,
            {
                "platform": "youtube",
                "external_id": "UgzThread0001.AbCdEf",
                "account": "UCagencychannel0001",
                "author_id": "UCviewer0002",
                "author_handle": "viewer_two",
                "author_display_name": "@viewer_two",
                "text": "Same question here",
                "text_original": "Same question here",
                "language": "en",
                "urls": [],
                "hashtags": [],
                "mentions": [],
                "media": [],
                "visibility": "public",
                "conversation_id": "UgzThread0001",
                "in_reply_to": "UgzThread0001",
                "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ&lc=UgzThread0001.AbCdEf",
                "created_at": utc(2026, 11, 25, 21, 30),
            },
        )


class TestEmail:
    def test_mime_reply_prefers_plain_text_and_strips_quote_and_signature(self) -> None:
        (post,) = normalise_fixture("email", "email_reply.eml")
        assert isinstance(post, CanonicalPost)
        check(
            post,
            {
                "platform": "email",
                "external_id": "CAF=reply-0002@mail.example.org",
                "account": "enquiries@council.example",
                "author_id": "jane.citizen@example.org",
                "author_handle": "jane.citizen@example.org",
                "author_display_name": "Jane Citizen",
                "text": "Re: Footpath repair \u2013 King St\n\n"
                "Thanks \u2013 it is still broken outside no. 12.\nSee https://photos.example/footpath",
                "text_original": post.text_original,
                "language": "en",
                "urls": ["https://photos.example/footpath"],
                "hashtags": [],
                "mentions": [],
                "media": [{"type": "image", "alt_text": "footpath.jpg"}],
                "visibility": "private",
                "conversation_id": "root-0000@mail.example.org",
                "in_reply_to": "council-0001@council.example",
                "url": None,
                "created_at": utc(2026, 11, 25, 22, 15),
            },
        )
        # The original keeps what was stripped from the text: signature and quoted reply.
        assert "\n-- \nJane Citizen" in post.text_original
        assert "> We have logged your request." in post.text_original
        assert "0400 000 000" not in post.text


class TestWebform:
    def test_documented_json_submission(self) -> None:
        (post,) = normalise_fixture("webform", "webform.json")
        check(
            post,
            {
                "platform": "webform",
                "external_id": "sub-000123",
                "account": "contact-us",
                "author_id": "sam.resident@example.net",
                "author_handle": "sam.resident@example.net",
                "author_display_name": "Sam Resident",
                "text": "Noise complaint\n\nConstruction noise starts at 5am on Elm St every day.",
                "text_original": "Noise complaint\n\n"
                "Construction noise\u200b starts at 5am on Elm St every day.",
                "language": "en",
                "urls": [],
                "hashtags": [],
                "mentions": [],
                "media": [],
                "visibility": "private",
                "conversation_id": "sub-000123",
                "in_reply_to": None,
                "url": "https://council.example/contact",
                "created_at": utc(2026, 11, 25, 22, 30),
            },
        )


def test_every_platform_has_a_fixture_test() -> None:
    tested = {"x", "facebook", "instagram", "mastodon", "bluesky", "reddit", "youtube", "email", "webform"}
    assert tested == {p.value for p in Platform}
