"""Bluesky: Jetstream ``commit`` events for ``app.bsky.feed.post`` records (one event or a list).
Facets index the text by UTF-8 *byte* offsets, not characters. Sources: the bluesky-social/jetstream README
(event shape: did, time_us, kind, commit{rev, operation, collection, rkey, record, cid}) and the
app.bsky.feed.post / app.bsky.richtext.facet / app.bsky.embed.* lexicons."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from services.ingest.normalise.base import Item, PlatformModel, Skipped, drop_none, require_account, utc

POST_COLLECTION = "app.bsky.feed.post"


class _Commit(PlatformModel):
    operation: str
    collection: str
    rkey: str
    record: dict[str, Any] | None = None
    cid: str | None = None


class _Event(PlatformModel):
    did: str
    time_us: int
    kind: str
    commit: _Commit | None = None


class _Record(PlatformModel):
    text: str
    createdAt: str
    langs: list[str] = Field(default_factory=list)
    reply: dict[str, Any] | None = None
    facets: list[dict[str, Any]] = Field(default_factory=list)
    embed: dict[str, Any] | None = None


def normalise(payload: Any, *, account: str | None) -> list[Item]:
    acct = require_account(account, "bluesky")
    raw_events = payload if isinstance(payload, list) else [payload]
    out: list[Item] = []
    for raw in raw_events:
        event = _Event.model_validate(raw)
        c = event.commit
        if event.kind != "commit" or c is None:
            out.append(Skipped(f"event kind {event.kind!r} is not a commit"))
            continue
        uri = f"at://{event.did}/{c.collection}/{c.rkey}"
        if c.collection != POST_COLLECTION or c.operation != "create" or c.record is None:
            out.append(Skipped(f"{c.operation} of {c.collection} is not a new post", uri))
            continue
        out.append(_post(event.did, c.rkey, uri, _Record.model_validate(c.record), account=acct))
    return out


def facet_entities(text: str, facets: list[dict[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    """``(urls, hashtags, mentions)`` from richtext facets. Mentions are the handle as written in the text
    (sliced by byte offsets), falling back to the DID when the slice is not an @handle."""
    data = text.encode("utf-8")
    urls: list[str] = []
    tags: list[str] = []
    mentions: list[str] = []
    for facet in facets:
        index = facet.get("index") or {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        span = ""
        if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(data):
            span = data[start:end].decode("utf-8", errors="replace")
        for feature in facet.get("features") or []:
            kind = feature.get("$type")
            if kind == "app.bsky.richtext.facet#link" and feature.get("uri"):
                urls.append(str(feature["uri"]))
            elif kind == "app.bsky.richtext.facet#tag" and feature.get("tag"):
                tags.append(str(feature["tag"]).lstrip("#").lower())
            elif kind == "app.bsky.richtext.facet#mention" and feature.get("did"):
                mentions.append(span[1:].lower() if span.startswith("@") else str(feature["did"]))
    return urls, tags, mentions


def _media(embed: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not embed:
        return []
    kind = embed.get("$type")
    if kind == "app.bsky.embed.images":
        # Images are blobs in the author's repository: there is no URL in the record, only the alt text.
        return [
            drop_none({"type": "image", "alt_text": i.get("alt") or None}) for i in embed.get("images", [])
        ]
    if kind == "app.bsky.embed.video":
        return [drop_none({"type": "video", "alt_text": embed.get("alt") or None})]
    if kind == "app.bsky.embed.external":
        ext = embed.get("external") or {}
        return [drop_none({"type": "link", "url": ext.get("uri"), "alt_text": ext.get("title") or None})]
    if kind == "app.bsky.embed.recordWithMedia":
        return _media(embed.get("media"))
    return []


def _post(did: str, rkey: str, uri: str, record: _Record, *, account: str) -> Item:
    urls, tags, mentions = facet_entities(record.text, record.facets)
    reply = record.reply or {}
    return drop_none(
        {
            "platform": "bluesky",
            "external_id": uri,
            "account": account,
            "text": record.text,
            # Jetstream commit events carry the author's DID only; the handle needs an identity lookup.
            "author": {"id": did},
            "created_at": utc(record.createdAt),
            "visibility": "public",
            "conversation_id": (reply.get("root") or {}).get("uri") or uri,
            "in_reply_to": (reply.get("parent") or {}).get("uri"),
            "url": f"https://bsky.app/profile/{did}/post/{rkey}",
            "language": record.langs[0] if record.langs else None,
            "urls": urls,
            "hashtags": tags,
            "mentions": mentions,
            "media": _media(record.embed),
        }
    )
