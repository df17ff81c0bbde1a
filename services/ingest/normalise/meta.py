"""Meta webhooks: Facebook Page ``feed`` changes (comments, posts, visitor posts) and Instagram ``comments``
and ``mentions``. One delivery carries ``entry[].changes[]``; each change is one item. Sources: Meta Graph API
Webhooks reference (Page object ``feed`` field; Instagram ``comments`` / ``mentions`` fields) and the
Instagram Platform webhook example payloads."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from services.ingest.normalise.base import Item, PlatformModel, Skipped, drop_none, utc


class _Change(PlatformModel):
    field: str
    value: dict[str, Any]


class _Entry(PlatformModel):
    id: str
    time: int | None = None
    changes: list[_Change] = Field(default_factory=list)
    # Instagram with Business Login may deliver the change inline in the entry.
    field: str | None = None
    value: dict[str, Any] | None = None


class _Delivery(PlatformModel):
    object: str
    entry: list[_Entry]


def _changes(entry: _Entry) -> list[_Change]:
    if entry.changes:
        return entry.changes
    if entry.field is not None and entry.value is not None:
        return [_Change(field=entry.field, value=entry.value)]
    return []


def normalise_facebook(payload: Any, *, account: str | None) -> list[Item]:
    delivery = _Delivery.model_validate(payload)
    out: list[Item] = []
    for entry in delivery.entry:
        for change in _changes(entry):
            out.append(_facebook_change(change, page_id=entry.id, account=account or entry.id))
    return out


def _facebook_change(change: _Change, *, page_id: str, account: str) -> Item:
    v = change.value
    item = v.get("item")
    external_id = v.get("comment_id") if item == "comment" else v.get("post_id")
    if change.field != "feed":
        return Skipped(f"field {change.field!r} is not a post", external_id)
    if item not in ("comment", "post", "status", "photo", "video"):
        return Skipped(f"feed item {item!r} is not a post", external_id)
    if v.get("verb") != "add":
        return Skipped(f"verb {v.get('verb')!r}: only new posts are ingested", external_id)
    sender = v.get("from") or {}
    if sender.get("id") == page_id:
        return Skipped("posted by the page itself", external_id)
    message = v.get("message")
    if not message:
        return Skipped("the change has no message text", external_id)
    media: list[dict[str, Any]] = []
    if v.get("photo"):
        media.append({"type": "image", "url": v["photo"]})
    if v.get("video"):
        media.append({"type": "video", "url": v["video"]})
    post_id = v.get("post_id")
    return drop_none(
        {
            "platform": "facebook",
            "external_id": external_id,
            "account": account,
            "text": message,
            "author": drop_none({"id": sender.get("id"), "display_name": sender.get("name")}),
            "created_at": utc(v.get("created_time")),
            "visibility": "public",
            "conversation_id": post_id,
            "in_reply_to": v.get("parent_id") if item == "comment" else None,
            "url": f"https://www.facebook.com/{external_id}" if external_id else None,
            "media": media,
        }
    )


def normalise_instagram(payload: Any, *, account: str | None) -> list[Item]:
    delivery = _Delivery.model_validate(payload)
    out: list[Item] = []
    for entry in delivery.entry:
        for change in _changes(entry):
            out.append(_instagram_change(change, entry=entry, account=account or entry.id))
    return out


def _instagram_change(change: _Change, *, entry: _Entry, account: str) -> Item:
    v = change.value
    if change.field == "mentions":
        # The mentions webhook carries only {comment_id, media_id}: the text must be fetched from the Graph
        # API, which ingest does not call. Reported, not silently dropped.
        return Skipped("mentions carry no text (fetch comment_id via the Graph API)", v.get("comment_id"))
    if change.field not in ("comments", "live_comments"):
        return Skipped(f"field {change.field!r} is not a post", v.get("id"))
    sender = v.get("from") or {}
    if sender.get("id") == entry.id:
        return Skipped("commented by the account itself", v.get("id"))
    media = v.get("media") or {}
    return drop_none(
        {
            "platform": "instagram",
            "external_id": v.get("id"),
            "account": account,
            "text": v.get("text"),
            "author": drop_none({"id": sender.get("id"), "handle": sender.get("username")}),
            # The comment value has no timestamp of its own: the entry's time is when Meta sent the change.
            "created_at": utc(entry.time),
            "visibility": "public",
            "conversation_id": media.get("id"),
            "in_reply_to": v.get("parent_id") or media.get("id"),
        }
    )
