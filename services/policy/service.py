"""Screening inbound posts: evaluate the rules, store the screening, emit posts.screened.v1."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.policy import rules
from services.policy.models import Screening
from services.policy.repository import ScreeningRepository
from shared.contracts import PostReceivedV1, PostScreenedV1, ScreeningFinding, new_event
from shared.contracts.envelope import Envelope
from shared.ids import uuid7

SOURCE = "/switchboard/policy"


async def screen_post(
    *, session: AsyncSession, post: PostReceivedV1, now: datetime
) -> Envelope[PostScreenedV1] | None:
    """Store the screening of ``post``; returns the event to emit, or None if it was screened before."""
    repo = ScreeningRepository(session)
    if await repo.get_by_post_id(post.post_id) is not None:
        return None
    result = rules.screen(post.text)
    screening = Screening(
        id=str(uuid7()),
        post_id=post.post_id,
        policy_version=result.policy_version,
        labels=result.labels,
        findings=[
            {"rule_id": f.rule_id, "label": f.label, "severity": f.severity, "start": f.start, "end": f.end}
            for f in result.findings
        ],
        risk=result.risk,
        priority=result.priority,
        redacted_text=result.redacted_text,
        screened_at=now,
    )
    await repo.add(screening)
    event = PostScreenedV1(
        post_id=post.post_id,
        screening_id=screening.id,
        policy_version=result.policy_version,
        labels=result.labels,
        findings=[ScreeningFinding(**f) for f in screening.findings],
        risk=result.risk,
        priority=result.priority,
        redacted_text=result.redacted_text,
        platform=post.platform,
        account=post.account,
        author_ref=post.author_ref,
        visibility=post.visibility,
        duplicate_of=post.duplicate_of,
        screened_at=now,
    )
    return new_event(event, source=SOURCE, time=now)
