"""Mastodon: a Status entity, a Notification entity of type ``mention`` (which embeds the Status), or a
server webhook ``{"event": "status.created", "object": Status}``. Sources: docs.joinmastodon.org entities
Status, Account, Notification, MediaAttachment, Status::Mention / Status::Tag, and the Webhook events page."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from services.ingest.normalise.base import Item, PlatformModel, Skipped, drop_none, require_account, utc
from services.ingest.normalise.text import html_to_text

_MEDIA = {"image": "image", "gifv": "gif", "video": "video", "audio": "audio"}


class _Account(PlatformModel):
    id: str
    username: str
    acct: str
    display_name: str | None = None


class _Status(PlatformModel):
    id: str
    uri: str | None = None
    url: str | None = None
    created_at: str
    account: _Account
    content: str
    spoiler_text: str = ""
    visibility: str = "public"
    in_reply_to_id: str | None = None
    language: str | None = None
    mentions: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[dict[str, Any]] = Field(default_factory=list)
    media_attachments: list[dict[str, Any]] = Field(default_factory=list)
    reblog: dict[str, Any] | None = None


class _Notification(PlatformModel):
    id: str
    type: str
    status: _Status | None = None


def normalise(payload: Any, *, account: str | None) -> list[Item]:
    acct = require_account(account, "mastodon")
    items = payload if isinstance(payload, list) else [payload]
    out: list[Item] = []
    for raw in items:
        if isinstance(raw, dict) and "event" in raw and "object" in raw:
            if raw["event"] not in ("status.created",):
                out.append(Skipped(f"event {raw['event']!r} is not a new status"))
                continue
            raw = raw["object"]
        if isinstance(raw, dict) and "type" in raw and "content" not in raw:
            note = _Notification.model_validate(raw)
            if note.type != "mention" or note.status is None:
                out.append(Skipped(f"notification type {note.type!r} is not a mention", note.id))
                continue
            status = note.status
        else:
            status = _Status.model_validate(raw)
        out.append(_status(status, account=acct))
    return out


def _status(s: _Status, *, account: str) -> Item:
    if s.reblog is not None:
        return Skipped("a boost repeats another post", s.id)
    body = html_to_text(s.content)
    # The content warning is part of what the author said (and often the most telling part).
    text = f"{s.spoiler_text}\n\n{body}" if s.spoiler_text else body
    return drop_none(
        {
            "platform": "mastodon",
            "external_id": s.id,
            "account": account,
            "text": text,
            "text_original": s.content,
            "author": drop_none(
                {"id": s.account.id, "handle": s.account.acct, "display_name": s.account.display_name or None}
            ),
            "created_at": utc(s.created_at),
            # unlisted is still public to anyone with the link; private (followers) and direct are not.
            "visibility": "public" if s.visibility in ("public", "unlisted") else "private",
            "in_reply_to": s.in_reply_to_id,
            "url": s.url or s.uri,
            "language": s.language,
            "hashtags": [str(t.get("name", "")).lower() for t in s.tags],
            "mentions": [str(m.get("acct", "")).lower() for m in s.mentions],
            "media": [
                drop_none(
                    {
                        "type": _MEDIA.get(str(m.get("type")), "other"),
                        "url": m.get("url"),
                        "alt_text": m.get("description"),
                    }
                )
                for m in s.media_attachments
            ],
        }
    )
