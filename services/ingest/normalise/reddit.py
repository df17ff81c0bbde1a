"""Reddit: ``t1`` (comment) and ``t3`` (link/self post) things, alone, in a list, or in a ``Listing``.
Sources: Reddit API JSON "thing" documentation (kind/data; fullnames t1_/t3_; created_utc; body/body_html,
title/selftext/selftext_html, link_id, parent_id, permalink, subreddit, author, author_fullname)."""

from __future__ import annotations

import html
from typing import Any

from pydantic import Field

from services.ingest.normalise.base import Item, PlatformModel, Skipped, drop_none, utc
from services.ingest.normalise.text import extract_urls, html_links, html_to_text


class _Thing(PlatformModel):
    kind: str
    data: dict[str, Any]


class _ListingData(PlatformModel):
    children: list[_Thing] = Field(default_factory=list)


def normalise(payload: Any, *, account: str | None) -> list[Item]:
    things: list[_Thing]
    if isinstance(payload, list):
        things = [_Thing.model_validate(t) for t in payload]
    else:
        top = _Thing.model_validate(payload)
        things = _ListingData.model_validate(top.data).children if top.kind == "Listing" else [top]
    return [_thing(t, account=account) for t in things]


def _from_html(escaped: str | None) -> str | None:
    # Reddit's *_html fields are HTML that is itself entity-escaped ("&lt;div class=\"md\"&gt;...").
    return html_to_text(html.unescape(escaped)) if escaped else None


def _links(escaped: str | None, text: str | None) -> list[str]:
    # A markdown link shows its text only: its target is in the HTML's href.
    hrefs = html_links(html.unescape(escaped)) if escaped else []
    return list(dict.fromkeys([*hrefs, *extract_urls(text or "")]))


def _thing(t: _Thing, *, account: str | None) -> Item:
    d = t.data
    name = d.get("name") or (f"{t.kind}_{d['id']}" if d.get("id") else None)
    if t.kind not in ("t1", "t3"):
        return Skipped(f"thing kind {t.kind!r} is not a comment or post", name)
    if d.get("author") in (None, "[deleted]"):
        return Skipped("the author deleted the post", name)
    if t.kind == "t1":
        body = d.get("body")
        text = _from_html(d.get("body_html")) or body
        original = body
        conversation, reply_to, link = d.get("link_id"), d.get("parent_id"), None
        urls = _links(d.get("body_html"), text)
    else:
        title, selftext = d.get("title") or "", d.get("selftext") or ""
        body_text = _from_html(d.get("selftext_html")) or selftext
        text = f"{title}\n\n{body_text}".strip()
        original = f"{title}\n\n{selftext}".strip()
        conversation, reply_to = name, None
        link = None if d.get("is_self", True) else d.get("url")
        urls = _links(d.get("selftext_html"), text)
    permalink = d.get("permalink")
    subreddit = d.get("subreddit")
    return drop_none(
        {
            "platform": "reddit",
            "external_id": name,
            "account": account or (f"r/{subreddit}" if subreddit else None),
            "text": text,
            "text_original": original,
            "author": drop_none(
                {"id": d.get("author_fullname") or d.get("author"), "handle": d.get("author")}
            ),
            "created_at": utc(d.get("created_utc")),
            "visibility": "public",
            "conversation_id": conversation,
            "in_reply_to": reply_to,
            "url": f"https://www.reddit.com{permalink}" if permalink else None,
            "urls": urls,
            "media": [{"type": "link", "url": link}] if link else [],
        }
    )
