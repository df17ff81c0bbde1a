"""X: API v2 tweet objects with ``includes.users`` / ``includes.media``, and Account Activity API
``tweet_create_events`` (v1.1 tweet objects). Sources: docs.x.com data dictionary (Tweet, User, Media objects,
fields and expansions) and the Account Activity API event payload reference."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from services.ingest.normalise.base import Item, PlatformModel, Skipped, drop_none, require_account, utc

PLATFORM = "x"
_MEDIA_TYPES = {"photo": "image", "video": "video", "animated_gif": "gif"}


class _V2Tweet(PlatformModel):
    id: str
    text: str
    author_id: str | None = None
    created_at: str
    conversation_id: str | None = None
    lang: str | None = None
    referenced_tweets: list[dict[str, Any]] = Field(default_factory=list)
    entities: dict[str, Any] = Field(default_factory=dict)
    attachments: dict[str, Any] = Field(default_factory=dict)


class _V2User(PlatformModel):
    id: str
    username: str
    name: str | None = None


class _V2Media(PlatformModel):
    media_key: str
    type: str
    url: str | None = None
    preview_image_url: str | None = None
    alt_text: str | None = None


class _V2Includes(PlatformModel):
    users: list[_V2User] = Field(default_factory=list)
    media: list[_V2Media] = Field(default_factory=list)


class _V2Response(PlatformModel):
    data: _V2Tweet | list[_V2Tweet]
    includes: _V2Includes = Field(default_factory=_V2Includes)


class _V1User(PlatformModel):
    id_str: str
    screen_name: str
    name: str | None = None


class _V1Tweet(PlatformModel):
    id_str: str
    created_at: str
    text: str | None = None
    full_text: str | None = None
    truncated: bool = False
    extended_tweet: dict[str, Any] | None = None
    user: _V1User
    in_reply_to_status_id_str: str | None = None
    lang: str | None = None
    entities: dict[str, Any] = Field(default_factory=dict)
    extended_entities: dict[str, Any] | None = None
    retweeted_status: dict[str, Any] | None = None


class _AccountActivity(PlatformModel):
    for_user_id: str
    tweet_create_events: list[_V1Tweet]


def _lang(value: str | None) -> str | None:
    return value if value and value not in ("und", "qme", "qht", "zxx") else None


def normalise(payload: Any, *, account: str | None) -> list[Item]:
    if isinstance(payload, dict) and "tweet_create_events" in payload:
        return _account_activity(_AccountActivity.model_validate(payload), account=account)
    return _v2(_V2Response.model_validate(payload), account=account)


def _v2(resp: _V2Response, *, account: str | None) -> list[Item]:
    acct = require_account(account, PLATFORM)
    users = {u.id: u for u in resp.includes.users}
    media = {m.media_key: m for m in resp.includes.media}
    tweets = resp.data if isinstance(resp.data, list) else [resp.data]
    out: list[Item] = []
    for t in tweets:
        user = users.get(t.author_id or "")
        replied = [r.get("id") for r in t.referenced_tweets if r.get("type") == "replied_to"]
        ents = t.entities
        out.append(
            drop_none(
                {
                    "platform": PLATFORM,
                    "external_id": t.id,
                    "account": acct,
                    "text": t.text,
                    "author": drop_none(
                        {
                            "id": t.author_id,
                            "handle": user.username if user else None,
                            "display_name": user.name if user else None,
                        }
                    ),
                    "created_at": utc(t.created_at),
                    "conversation_id": t.conversation_id,
                    "in_reply_to": replied[0] if replied else None,
                    "url": f"https://x.com/{user.username if user else 'i/web'}/status/{t.id}",
                    "language": _lang(t.lang),
                    "urls": [u.get("expanded_url") or u.get("url") for u in ents.get("urls", [])],
                    "hashtags": [str(h.get("tag", "")).lower() for h in ents.get("hashtags", [])],
                    "mentions": [str(m.get("username", "")).lower() for m in ents.get("mentions", [])],
                    "media": [
                        drop_none(
                            {
                                "type": _MEDIA_TYPES.get(m.type, "other"),
                                "url": m.url or m.preview_image_url,
                                "alt_text": m.alt_text,
                            }
                        )
                        for key in t.attachments.get("media_keys", [])
                        if (m := media.get(key)) is not None
                    ],
                }
            )
        )
    return out


def _account_activity(aa: _AccountActivity, *, account: str | None) -> list[Item]:
    acct = account or aa.for_user_id
    out: list[Item] = []
    for t in aa.tweet_create_events:
        if t.user.id_str == aa.for_user_id:
            out.append(Skipped("sent by the subscribed account itself", t.id_str))
            continue
        if t.retweeted_status is not None:
            out.append(Skipped("a retweet repeats another post", t.id_str))
            continue
        ext = t.extended_tweet or {}
        text = ext.get("full_text") or t.full_text or t.text or ""
        ents = ext.get("entities") or t.entities
        ext_ents = ext.get("extended_entities") or t.extended_entities or {}
        out.append(
            drop_none(
                {
                    "platform": PLATFORM,
                    "external_id": t.id_str,
                    "account": acct,
                    "text": text,
                    "author": drop_none(
                        {"id": t.user.id_str, "handle": t.user.screen_name, "display_name": t.user.name}
                    ),
                    "created_at": utc(t.created_at),
                    "in_reply_to": t.in_reply_to_status_id_str,
                    "url": f"https://x.com/{t.user.screen_name}/status/{t.id_str}",
                    "language": _lang(t.lang),
                    "urls": [u.get("expanded_url") or u.get("url") for u in ents.get("urls", [])],
                    "hashtags": [str(h.get("text", "")).lower() for h in ents.get("hashtags", [])],
                    "mentions": [
                        str(m.get("screen_name", "")).lower() for m in ents.get("user_mentions", [])
                    ],
                    "media": [
                        drop_none(
                            {
                                "type": _MEDIA_TYPES.get(str(m.get("type")), "other"),
                                "url": m.get("media_url_https"),
                                "alt_text": m.get("ext_alt_text"),
                            }
                        )
                        for m in ext_ents.get("media", [])
                    ],
                }
            )
        )
    return out
