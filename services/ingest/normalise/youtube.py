"""YouTube: ``commentThread`` resources (alone, or ``items`` of a commentThreadListResponse). The top-level
comment and each included reply become posts. Source: YouTube Data API v3 reference, CommentThreads and
Comments resource representations."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from services.ingest.normalise.base import Item, PlatformModel, drop_none, utc
from services.ingest.normalise.text import html_to_text


class _CommentSnippet(PlatformModel):
    authorDisplayName: str | None = None
    authorChannelUrl: str | None = None
    authorChannelId: dict[str, Any] | None = None
    textDisplay: str | None = None
    textOriginal: str | None = None
    videoId: str | None = None
    parentId: str | None = None
    publishedAt: str


class _Comment(PlatformModel):
    id: str
    snippet: _CommentSnippet


class _ThreadSnippet(PlatformModel):
    channelId: str | None = None
    videoId: str | None = None
    topLevelComment: _Comment
    isPublic: bool = True


class _Replies(PlatformModel):
    comments: list[_Comment] = Field(default_factory=list)


class _Thread(PlatformModel):
    kind: str = "youtube#commentThread"
    id: str
    snippet: _ThreadSnippet
    replies: _Replies | None = None


def normalise(payload: Any, *, account: str | None) -> list[Item]:
    if isinstance(payload, dict) and payload.get("kind") == "youtube#commentThreadListResponse":
        threads = [_Thread.model_validate(t) for t in payload.get("items") or []]
    elif isinstance(payload, list):
        threads = [_Thread.model_validate(t) for t in payload]
    else:
        threads = [_Thread.model_validate(payload)]
    out: list[Item] = []
    for thread in threads:
        comments = [thread.snippet.topLevelComment, *(thread.replies.comments if thread.replies else [])]
        for comment in comments:
            out.append(_comment(comment, thread=thread, account=account))
    return out


def _comment(c: _Comment, *, thread: _Thread, account: str | None) -> Item:
    s = c.snippet
    video = s.videoId or thread.snippet.videoId
    # textOriginal is the plain text as written; textDisplay is HTML and only returned when textFormat=html.
    text = s.textOriginal if s.textOriginal else (html_to_text(s.textDisplay) if s.textDisplay else None)
    return drop_none(
        {
            "platform": "youtube",
            "external_id": c.id,
            "account": account or thread.snippet.channelId,
            "text": text,
            "text_original": s.textDisplay or s.textOriginal,
            "author": drop_none(
                {
                    "id": (s.authorChannelId or {}).get("value"),
                    "handle": (s.authorChannelUrl or "").rsplit("/", 1)[-1].lstrip("@") or None,
                    "display_name": s.authorDisplayName,
                }
            ),
            "created_at": utc(s.publishedAt),
            "visibility": "public" if thread.snippet.isPublic else "private",
            "conversation_id": thread.id,
            "in_reply_to": s.parentId,
            "url": f"https://www.youtube.com/watch?v={video}&lc={c.id}" if video else None,
        }
    )
