"""Policy orchestration: the active pack, modes, screening inbound posts, checking outbound replies, admin.

Functions take the session and ``now`` as keyword arguments and only flush: the request dependency or the
event-handler wrapper owns the transaction. Nothing here logs post text, drafts or matched values.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from services.policy import audit, engine
from services.policy.models import Check, ModeChange, PolicyActivation, PolicyPackVersion
from services.policy.pack import PolicyPack, parse_pack
from services.policy.repository import (
    ActivationRepository,
    CheckRepository,
    ModeRepository,
    PackRepository,
    ScreeningRepository,
)
from services.policy.schemas import CheckCreate, EvaluateItem, MediaIn, ModeSet
from shared.contracts import PostReceivedV1, PostScreenedV1, ScreeningFinding, new_event
from shared.contracts.envelope import Envelope
from shared.errors import Conflict, NotFound
from shared.ids import uuid7
from shared.logging import get_logger

SOURCE = "/switchboard/policy"
DEFAULT_PACK_PATH = Path(__file__).parent / "packs" / "au-gov.yaml"
ALL_JURISDICTIONS = "ALL"
_CACHE_LIMIT = 32

log = get_logger(__name__)


@cache
def default_pack() -> engine.CompiledPack:
    """The bundled au-gov pack: active until an administrator activates another version."""
    return engine.compile_pack(parse_pack(DEFAULT_PACK_PATH.read_bytes()))


# Versions are immutable once stored, so a compiled pack never goes stale; the cache is per process.
_compiled: dict[str, engine.CompiledPack] = {}


async def pack_by_version(session: AsyncSession, policy_version: str) -> engine.CompiledPack | None:
    builtin = default_pack()
    if policy_version == builtin.policy_version:
        return builtin
    cached = _compiled.get(policy_version)
    if cached is not None:
        return cached
    row = await PackRepository(session).get(policy_version)
    if row is None:
        return None
    compiled = engine.compile_pack(PolicyPack.model_validate(row.document))
    if len(_compiled) >= _CACHE_LIMIT:
        _compiled.clear()
    _compiled[policy_version] = compiled
    return compiled


@dataclass(frozen=True)
class _ModeState:
    mode: str
    jurisdiction: str
    active: bool
    starts_at: datetime | None
    ends_at: datetime | None


@dataclass(frozen=True)
class _PolicyState:
    read_at: float
    policy_version: str | None
    modes: tuple[_ModeState, ...]


# Which pack is active and which modes are set, per database, re-read at most every STATE_TTL_SECONDS:
# it saves two queries on every screening and check. A change made by this process is seen at once
# (invalidate_state); one made by another process within STATE_TTL_SECONDS. Mode windows are still
# compared with each request's ``now``.
STATE_TTL_SECONDS = 1.0
_states: weakref.WeakKeyDictionary[object, _PolicyState] = weakref.WeakKeyDictionary()


def invalidate_state(session: AsyncSession) -> None:
    """Forget the cached state now and again once this transaction commits, so that a request reading the
    old state between now and the commit cannot keep it cached."""
    key = session.bind
    _states.pop(key, None)
    event.listen(session.sync_session, "after_commit", lambda _s: _states.pop(key, None), once=True)


async def _state(session: AsyncSession) -> _PolicyState:
    key = session.bind
    cached = _states.get(key)
    if cached is not None and time.monotonic() - cached.read_at < STATE_TTL_SECONDS:
        return cached
    activation = await ActivationRepository(session).latest()
    changes = await ModeRepository(session).current()
    state = _PolicyState(
        read_at=time.monotonic(),
        policy_version=activation.policy_version if activation is not None else None,
        modes=tuple(_ModeState(c.mode, c.jurisdiction, c.active, c.starts_at, c.ends_at) for c in changes),
    )
    _states[key] = state
    return state


async def active_pack(session: AsyncSession) -> engine.CompiledPack:
    state = await _state(session)
    if state.policy_version is None:
        return default_pack()
    compiled = await pack_by_version(session, state.policy_version)
    if compiled is None:  # not reachable: activation only names stored or built-in versions
        raise NotFound(f"The active policy version {state.policy_version!r} is missing.")
    return compiled


def _mode_on(change: _ModeState, *, jurisdiction: str, now: datetime) -> bool:
    if not change.active or change.jurisdiction not in (jurisdiction, ALL_JURISDICTIONS):
        return False
    if change.starts_at is not None and now < change.starts_at:
        return False
    return change.ends_at is None or now < change.ends_at


async def active_modes(session: AsyncSession, *, jurisdiction: str, now: datetime) -> frozenset[str]:
    state = await _state(session)
    return frozenset(c.mode for c in state.modes if _mode_on(c, jurisdiction=jurisdiction, now=now))


# --- inbound -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreeningInputs:
    """What screening a batch needs from the database, read once per batch: the active pack and modes."""

    pack: engine.CompiledPack
    modes: frozenset[str]
    now: datetime


@dataclass(frozen=True)
class Screened:
    """One post's screening, not yet stored: its row and the event to emit once it is."""

    post_id: str
    row: dict[str, Any]
    event: Envelope[PostScreenedV1]


async def screening_inputs(*, session: AsyncSession, now: datetime) -> ScreeningInputs:
    pack = await active_pack(session)
    modes = await active_modes(session, jurisdiction=pack.pack.jurisdiction, now=now)
    return ScreeningInputs(pack=pack, modes=modes, now=now)


async def store_screenings(
    *, session: AsyncSession, screened: Sequence[Screened]
) -> list[Envelope[PostScreenedV1] | None]:
    """Store a consumer batch's screenings: one query for the posts screened before (None for those, and for
    a post that appears twice), one Core executemany of the new rows; the event to emit for each."""
    repo = ScreeningRepository(session)
    done = await repo.screened_post_ids({s.post_id for s in screened})
    out: list[Envelope[PostScreenedV1] | None] = []
    rows: list[dict[str, Any]] = []
    for s in screened:
        if s.post_id in done:
            out.append(None)
            continue
        done.add(s.post_id)
        rows.append(s.row)
        out.append(s.event)
    await repo.insert_many(rows)
    return out


def screen_one(inputs: ScreeningInputs, post: PostReceivedV1) -> Screened:
    """Screen one post (pure: no I/O): the row to store and the event to emit. A consumer batch runs this per
    post inside ``each_item``, so a post whose screening raises is retried alone and dead-lettered, and the
    rest of the batch is stored."""
    now = inputs.now
    ctx = engine.Context(
        direction="inbound",
        now=now,
        platform=post.platform.value,
        visibility=post.visibility,
        media=[
            engine.MediaItem(type=m.type, alt_text=m.alt_text)
            for m in post.media
            if m.type in ("image", "gif", "video", "audio")
        ],
        active_modes=inputs.modes,
        duplicate=post.duplicate_of is not None,
    )
    result = engine.screen(inputs.pack, post.text, ctx)
    findings = [
        {
            "rule_id": f.rule_id,
            "label": f.label,
            "severity": f.severity,
            "action": f.action,
            "start": f.start,
            "end": f.end,
        }
        for f in result.findings[:500]
    ]
    screening_id = str(uuid7())
    row = {
        "id": screening_id,
        "post_id": post.post_id,
        "policy_version": result.policy_version,
        "labels": result.labels,
        "findings": findings,
        "risk": result.risk,
        "priority": result.priority,
        "redacted_text": result.redacted_text,
        "failed_rules": result.failed_rules,
        "screened_at": now,
    }
    if result.failed_rules:
        log.warning("rules_failed", post_id=post.post_id, rules=result.failed_rules)
    event = PostScreenedV1(
        post_id=post.post_id,
        screening_id=screening_id,
        policy_version=result.policy_version,
        labels=result.labels,
        findings=[ScreeningFinding(**f) for f in findings],
        risk=result.risk,
        priority=result.priority,
        redacted_text=result.redacted_text,
        crisis=result.crisis,
        failed_rules=result.failed_rules,
        platform=post.platform,
        account=post.account,
        author_ref=post.author_ref,
        visibility=post.visibility,
        duplicate_of=post.duplicate_of,
        screened_at=now,
    )
    return Screened(post_id=post.post_id, row=row, event=new_event(event, source=SOURCE, time=now))


# --- outbound ----------------------------------------------------------------------------------------------


def _media(items: Sequence[MediaIn]) -> list[engine.MediaItem]:
    return [
        engine.MediaItem(type=m.type, alt_text=m.alt_text, captions=m.captions, decorative=m.decorative)
        for m in items
    ]


def _masks(pack: engine.CompiledPack) -> dict[str, str]:
    return pack.masks


async def run_check(
    *,
    session: AsyncSession,
    request: CheckCreate,
    checked_by: str,
    now: datetime,
    authorised_departments: frozenset[str] | None = None,
) -> Check:
    """Check a draft reply against the active pack and store the check with its result.
    ``authorised_departments``: the checker's departments (OUT-01); None when the checker is not limited."""
    pack = await active_pack(session)
    modes = await active_modes(session, jurisdiction=pack.pack.jurisdiction, now=now)
    reply_to_labels: frozenset[str] = frozenset()
    if request.in_reply_to_post_id is not None:
        labels = await ScreeningRepository(session).labels_of_post(request.in_reply_to_post_id)
        reply_to_labels = frozenset(labels or ())
    ctx = engine.Context(
        direction="outbound",
        now=now,
        platform=request.platform.value,
        visibility=request.visibility,
        media=_media(request.media),
        reply_to_labels=reply_to_labels,
        active_modes=modes,
        department=request.department,
        authorised_departments=authorised_departments,
    )
    result = engine.check(pack, request.text, ctx)
    personal = [f for f in result.findings if f.label.startswith("pii:") and f.start is not None]
    check = Check(
        id=str(uuid7()),
        policy_version=result.policy_version,
        decision=result.decision,
        platform=request.platform.value,
        visibility=request.visibility,
        in_reply_to_post_id=request.in_reply_to_post_id,
        department=request.department,
        text_redacted=engine.redact(request.text, personal, _masks(pack)),
        text_sha256=hashlib.sha256(request.text.encode()).hexdigest(),
        media=[m.model_dump() for m in request.media],
        findings=[f.as_dict() for f in result.findings[:500]],
        failed_rules=result.failed_rules,
        active_modes=sorted(modes),
        checked_by=checked_by,
        checked_at=now,
    )
    await CheckRepository(session).add(check)
    audit.check_decided(session, check)
    return check


async def get_check(*, session: AsyncSession, check_id: str) -> Check:
    check = await CheckRepository(session).get(check_id)
    if check is None:
        raise NotFound(f"No check {check_id!r}.")
    return check


# --- admin -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackInfo:
    policy_version: str
    name: str
    version: str
    jurisdiction: str
    rule_count: int
    builtin: bool
    active: bool
    created_by: str | None
    created_at: datetime | None


async def list_packs(*, session: AsyncSession, limit: int = 100) -> list[PackInfo]:
    activation = await ActivationRepository(session).latest()
    builtin = default_pack()
    active = activation.policy_version if activation is not None else builtin.policy_version
    infos = [
        PackInfo(
            policy_version=builtin.policy_version,
            name=builtin.pack.name,
            version=builtin.pack.version,
            jurisdiction=builtin.pack.jurisdiction,
            rule_count=len(builtin.pack.rules),
            builtin=True,
            active=active == builtin.policy_version,
            created_by=None,
            created_at=None,
        )
    ]
    for row in await PackRepository(session).list_all(limit=limit):
        infos.append(
            PackInfo(
                policy_version=row.policy_version,
                name=row.name,
                version=row.version,
                jurisdiction=str(row.document.get("jurisdiction", "")),
                rule_count=row.rule_count,
                builtin=False,
                active=active == row.policy_version,
                created_by=row.created_by,
                created_at=row.created_at,
            )
        )
    return infos


async def upload_pack(
    *, session: AsyncSession, raw: bytes, created_by: str, now: datetime
) -> PolicyPackVersion:
    """Validate and store a new version (not active until activated). Raises ``PackInvalid`` or Conflict."""
    pack = parse_pack(raw)
    engine.compile_pack(pack)  # an accepted pack always compiles; proven here, not assumed
    repo = PackRepository(session)
    pv = pack.policy_version
    if pv == default_pack().policy_version or await repo.get(pv) is not None:
        raise Conflict(f"Policy version {pv!r} already exists; versions are immutable, upload a new version.")
    row = PolicyPackVersion(
        policy_version=pv,
        name=pack.name,
        version=pack.version,
        document=pack.model_dump(mode="json"),
        sha256=hashlib.sha256(raw).hexdigest(),
        rule_count=len(pack.rules),
        created_by=created_by,
        created_at=now,
    )
    await repo.add(row)
    audit.pack_uploaded(session, row)
    return row


async def activate(
    *, session: AsyncSession, policy_version: str, activated_by: str, reason: str, now: datetime
) -> PolicyActivation:
    if await pack_by_version(session, policy_version) is None:
        raise NotFound(f"No policy version {policy_version!r}.")
    row = PolicyActivation(
        policy_version=policy_version, activated_by=activated_by, reason=reason, activated_at=now
    )
    await ActivationRepository(session).add(row)
    audit.pack_activated(session, row)
    invalidate_state(session)
    log.info("policy_activated", policy_version=policy_version, by=activated_by)
    return row


@dataclass(frozen=True)
class DryRun:
    labels: list[str]
    findings: list[engine.Finding]
    failed_rules: list[str]
    decision: str | None
    risk: str | None
    priority: int | None
    redacted_text: str | None


async def evaluate(
    *, session: AsyncSession, policy_version: str, items: Sequence[EvaluateItem], now: datetime
) -> tuple[str, list[DryRun]]:
    """Dry run: evaluate ``items`` against any stored version with the current modes; stores nothing."""
    pack = await pack_by_version(session, policy_version)
    if pack is None:
        raise NotFound(f"No policy version {policy_version!r}.")
    modes = await active_modes(session, jurisdiction=pack.pack.jurisdiction, now=now)
    out = []
    for item in items:
        ctx = engine.Context(
            direction=item.direction,
            now=now,
            platform=item.platform.value if item.platform else None,
            visibility=item.visibility,
            media=_media(item.media),
            reply_to_labels=frozenset(item.reply_to_labels),
            active_modes=modes if item.modes is None else frozenset(item.modes),
        )
        if item.direction == "inbound":
            s = engine.screen(pack, item.text, ctx)
            out.append(
                DryRun(s.labels, s.findings, s.failed_rules, None, s.risk, s.priority, s.redacted_text)
            )
        else:
            c = engine.check(pack, item.text, ctx)
            labels = sorted({f.label for f in c.findings})
            out.append(DryRun(labels, c.findings, c.failed_rules, c.decision, None, None, None))
    return pack.policy_version, out


async def set_mode(*, session: AsyncSession, change: ModeSet, changed_by: str, now: datetime) -> ModeChange:
    row = ModeChange(
        mode=change.mode,
        jurisdiction=change.jurisdiction,
        active=change.active,
        starts_at=change.starts_at,
        ends_at=change.ends_at,
        changed_by=changed_by,
        reason=change.reason,
        changed_at=now,
    )
    await ModeRepository(session).add(row)
    audit.mode_changed(session, row)
    invalidate_state(session)
    log.info(
        "mode_changed",
        mode=change.mode,
        jurisdiction=change.jurisdiction,
        active=change.active,
        by=changed_by,
    )
    return row


async def current_modes(*, session: AsyncSession) -> Sequence[ModeChange]:
    return await ModeRepository(session).current()


async def mode_history(*, session: AsyncSession, limit: int) -> Sequence[ModeChange]:
    return await ModeRepository(session).history(limit=limit)
