"""Who takes a post: pure responder choice and queue draining, no I/O.

Eligible: available, member of the target department, holds every required skill, speaks the post's language
(when known), has spare capacity and has not declined or let an offer for this post expire. Among the
eligible: a continuity responder (handled the conversation or author before) first, then the least loaded,
then the longest idle, then the id (so the choice is deterministic). Every excluded candidate is reported with
its reason so the decision can be explained later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Statuses that hold a unit of a responder's capacity.
HOLDING = frozenset({"offered", "assigned", "awaiting_public"})
DEFAULT_LANGUAGES = frozenset({"en"})


@dataclass(frozen=True)
class Candidate:
    id: str
    status: str  # available | away | offline
    departments: frozenset[str]
    skills: frozenset[str]
    languages: frozenset[str]
    capacity: int
    load: int  # open assignments (offered, assigned, awaiting the public)
    idle_since: datetime | None  # last time work was offered to them; None = never


@dataclass(frozen=True)
class Need:
    """What a waiting post needs from a responder."""

    department: str
    required_skills: frozenset[str] = frozenset()
    language: str | None = None
    preferred: frozenset[str] = frozenset()  # continuity: responders who handled the conversation/author
    excluded: frozenset[str] = frozenset()  # declined or let the offer expire


@dataclass(frozen=True)
class Choice:
    responder_id: str | None
    reason: str
    considered: int
    excluded: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def explain(self) -> dict[str, Any]:
        return {
            "responder_id": self.responder_id,
            "reason": self.reason,
            "candidates_considered": self.considered,
            "excluded": [{"responder_id": r, "reason": why} for r, why in self.excluded],
        }


def exclusion(c: Candidate, need: Need) -> str | None:
    """Why ``c`` cannot take the post, or None if they can."""
    if need.department not in c.departments:
        return "not_in_department"
    if c.status != "available":
        return c.status  # away / offline
    if c.id in need.excluded:
        return "declined_or_expired"
    if c.load >= c.capacity:
        return "at_capacity"
    missing = need.required_skills - c.skills
    if missing:
        return "missing_skill:" + ",".join(sorted(missing))
    # Responders who list no languages are taken to answer in English only.
    if need.language is not None and need.language not in (c.languages or DEFAULT_LANGUAGES):
        return f"language:{need.language}"
    return None


def choose(*, need: Need, candidates: Iterable[Candidate]) -> Choice:
    eligible: list[Candidate] = []
    excluded: list[tuple[str, str]] = []
    considered = 0
    for c in candidates:
        if need.department not in c.departments:
            continue  # other departments' staff are not candidates at all; listing them would be noise
        considered += 1
        why = exclusion(c, need)
        if why is None:
            eligible.append(c)
        else:
            excluded.append((c.id, why))
    if not eligible:
        return Choice(None, "no_eligible_responder", considered, tuple(excluded))
    preferred = [c for c in eligible if c.id in need.preferred]
    pool, reason = (preferred, "continuity") if preferred else (eligible, "least_loaded_longest_idle")
    best = min(pool, key=lambda c: (c.load, c.idle_since or EPOCH, c.id))
    return Choice(best.id, reason, considered, tuple(excluded))


@dataclass(frozen=True)
class Waiting:
    assignment_id: str
    priority: int
    waiting_since: datetime
    need: Need


def queue_order(items: Iterable[Waiting]) -> list[Waiting]:
    """Priority first (1 is most urgent), then age: new arrivals never jump older posts of equal priority."""
    return sorted(items, key=lambda w: (w.priority, w.waiting_since, w.assignment_id))


def plan_drain(
    *, waiting: Sequence[Waiting], candidates: Sequence[Candidate], now: datetime
) -> list[tuple[Waiting, Choice]]:
    """Offer waiting posts in queue order to whoever can take them, tracking load as offers are made.

    Returns one (waiting, choice) per post that got a responder; the rest stay waiting.
    """
    pool = {c.id: c for c in candidates}
    out: list[tuple[Waiting, Choice]] = []
    for item in queue_order(waiting):
        if not any(exclusion(c, item.need) is None for c in pool.values()):
            continue
        choice = choose(need=item.need, candidates=pool.values())
        if choice.responder_id is None:
            continue
        c = pool[choice.responder_id]
        pool[c.id] = replace(c, load=c.load + 1, idle_since=now)
        out.append((item, choice))
    return out
