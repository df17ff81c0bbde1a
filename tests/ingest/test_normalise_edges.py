"""Platform variants beside the main fixtures: the other shapes each documented payload can take."""

from __future__ import annotations

import orjson

from services.ingest.normalise import Skipped, parse_delivery
from services.ingest.normalise.mail import strip_reply
from services.ingest.schemas import PostCreate
from shared.contracts.events import Platform
from tests.ingest.conftest import fixture_bytes


def only_post(platform: Platform, body: bytes, account: str | None = None) -> PostCreate:
    (item,) = parse_delivery(platform, body, account=account)
    assert isinstance(item, PostCreate), item
    return item


class TestEmailVariants:
    def test_html_only_base64_message_is_decoded_and_converted(self) -> None:
        import base64

        html = b"<p>Bonjour,</p><p>la route est ferm&eacute;e&nbsp;?</p>"
        raw = (
            b"From: Zoe <zoe@example.fr>\r\nTo: mairie@example.fr\r\nMessage-ID: <m1@example.fr>\r\n"
            b"Date: Thu, 26 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + base64.encodebytes(html)
        )
        post = only_post(Platform.EMAIL, raw)
        assert post.text == "Bonjour,\n\nla route est fermée ?"
        assert post.created_at.isoformat() == "2026-11-26T09:00:00+00:00"
        assert post.conversation_id == "m1@example.fr"

    def test_outlook_style_quote_is_cut(self) -> None:
        body = "Still broken.\n\n-----Original Message-----\nFrom: Council\nSent: Monday\nWe fixed it."
        assert strip_reply(body).strip() == "Still broken."

    def test_wrapped_attribution_line_is_cut(self) -> None:
        body = (
            "Thanks!\n\nOn Tue, 25 Nov 2026 at 10:00, Council Enquiries\n"
            "<enquiries@council.example> wrote:\n> old"
        )
        assert strip_reply(body).strip() == "Thanks!"


class TestMastodonVariants:
    def test_direct_status_with_content_warning_is_private_and_keeps_the_warning(self) -> None:
        status = orjson.loads(fixture_bytes("mastodon_notification.json"))["status"]
        status.update(visibility="direct", spoiler_text="Complaint about staff")
        post = only_post(Platform.MASTODON, orjson.dumps(status), account="@council@gov.example")
        assert post.visibility == "private"
        assert post.text.startswith("Complaint about staff\n\n@council the footpath")

    def test_server_webhook_wrapper_and_other_notifications(self) -> None:
        status = orjson.loads(fixture_bytes("mastodon_notification.json"))["status"]
        wrapped = orjson.dumps(
            {"event": "status.created", "created_at": "2026-11-25T22:10:00Z", "object": status}
        )
        assert only_post(Platform.MASTODON, wrapped, account="a").external_id == status["id"]
        favourite = {"id": "1", "type": "favourite", "created_at": "2026-11-25T22:10:00Z", "status": status}
        (item,) = parse_delivery(Platform.MASTODON, orjson.dumps(favourite), account="a")
        assert isinstance(item, Skipped)


class TestXVariants:
    def test_single_tweet_object_without_includes(self) -> None:
        body = orjson.dumps(
            {
                "data": {
                    "id": "1",
                    "text": "hello #There",
                    "author_id": "9",
                    "created_at": "2026-11-25T22:00:00Z",
                }
            }
        )
        post = only_post(Platform.X, body, account="@agency")
        assert post.author.id == "9"
        assert post.author.handle is None
        assert post.url == "https://x.com/i/web/status/1"

    def test_extended_tweet_full_text_wins_over_the_truncated_text(self) -> None:
        aa = orjson.loads(fixture_bytes("x_account_activity.json"))
        event = aa["tweet_create_events"][0]
        event.update(
            truncated=True, text="short…", extended_tweet={"full_text": "the whole long text", "entities": {}}
        )
        aa["tweet_create_events"] = [event]
        assert only_post(Platform.X, orjson.dumps(aa)).text == "the whole long text"


class TestYouTubeVariants:
    def test_list_response_of_threads(self) -> None:
        thread = orjson.loads(fixture_bytes("youtube_comment_thread.json"))
        body = orjson.dumps({"kind": "youtube#commentThreadListResponse", "items": [thread, thread]})
        items = parse_delivery(Platform.YOUTUBE, body, account=None)
        assert len(items) == 4  # two threads, each a top-level comment and a reply


class TestRedditVariants:
    def test_deleted_author_is_skipped(self) -> None:
        thing = {
            "kind": "t1",
            "data": {"name": "t1_x", "author": "[deleted]", "body": "[deleted]", "created_utc": 1},
        }
        (item,) = parse_delivery(Platform.REDDIT, orjson.dumps(thing), account=None)
        assert item == Skipped("the author deleted the post", "t1_x")
