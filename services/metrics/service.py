"""Metrics domain logic: record events as facts, fold them per post, count volume, detect spikes, summarise.

Functions take the session and ``now`` as keyword arguments and only flush: the event-handler wrapper or the
request dependency owns the transaction. Free text never enters this service's tables.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics import audit, prometheus
from services.metrics.facts import T_CREATED, T_RECEIVED, EventRecord, PostFacts, fold, parse_time
from services.metrics.models import VolumeSpike
from services.metrics.ops import replay_headers
from services.metrics.repository import (
    DeadLetterRepository,
    PostEventRepository,
    PostFactRepository,
    RollupRepository,
    VolumeRepository,
)
from services.metrics.stats import Interval, SpikeRule, bucket_start, detect_spike, percentile
from shared.contracts.envelope import Envelope, new_event
from shared.contracts.events import VolumeSpikeV1
from shared.errors import Conflict, NotFound
from shared.kafka import OutboxWriter
from shared.logging import get_logger

log = get_logger(__name__)

# Free text stays out of metrics: it is personal information and no number needs it. Mentions (people's
# handles) and urls (profile and personal links) are lifted from the text and are the same.
TEXT_FIELDS = frozenset({"text", "redacted_text", "findings", "reason", "mentions", "urls"})
# Hashtags are public topic markers, kept (lower-cased, bounded) so that a campaign's volume can be watched.
HASHTAG = re.compile(r"(?<![\w#])#(\w{2,60})")
MAX_HASHTAGS = 20
SOURCE = "switchboard/metrics"


def hashtags_in(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for match in HASHTAG.finditer(text[:40_000]):
        seen.setdefault(match.group(1).lower(), None)
        if len(seen) >= MAX_HASHTAGS:
            break
    return list(seen)


def attributes_of(data: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: v for k, v in data.items() if k not in TEXT_FIELDS}
    if isinstance(data.get("text"), str):
        attributes["hashtags"] = hashtags_in(data["text"])
    return attributes


@dataclass
class Recorded:
    stored: bool
    spikes: list[Envelope[VolumeSpikeV1]] = field(default_factory=list)


@dataclass(frozen=True)
class Incoming:
    """An event to record, with where it was read from."""

    envelope: Envelope[Any]
    topic: str
    partition: int
    offset: int


async def record_event(
    *,
    session: AsyncSession,
    envelope: Envelope[Any],
    topic: str,
    partition: int,
    offset: int,
    now: datetime,
    spike_rule: SpikeRule | None = None,
    spike_emit_window: timedelta = timedelta(hours=2),
) -> Recorded:
    """Store the event once, refold its post's facts, count inbound volume and detect spikes.

    A replayed event (already stored) changes nothing and returns ``stored=False``.
    """
    return await record_events(
        session=session,
        events=[Incoming(envelope, topic, partition, offset)],
        now=now,
        spike_rule=spike_rule,
        spike_emit_window=spike_emit_window,
    )


async def record_events(
    *,
    session: AsyncSession,
    events: Sequence[Incoming],
    now: datetime,
    spike_rule: SpikeRule | None = None,
    spike_emit_window: timedelta = timedelta(hours=2),
) -> Recorded:
    """``record_event`` for a consumer batch, in bulk: one read of the events stored before, one insert of
    the new ones (a Core executemany), one read of their posts' timelines, each post's facts refolded once,
    and executemany upserts of the facts, labels, departments, dirty rollup days and volume counters.

    ``stored`` is whether any event was new; replayed events change nothing.
    """
    repo = PostEventRepository(session)
    known = await repo.existing_ids({e.envelope.id for e in events})
    new: list[tuple[Envelope[Any], dict[str, Any]]] = []
    rows: list[dict[str, Any]] = []
    for item in events:
        envelope = item.envelope
        if envelope.id in known:
            continue
        known.add(envelope.id)
        attributes = attributes_of(envelope.data.model_dump(mode="json"))
        new.append((envelope, attributes))
        rows.append(
            {
                "event_id": envelope.id,
                "post_id": envelope.subject,
                "type": envelope.type,
                "source": envelope.source,
                "occurred_at": _occurred_at(envelope.time, attributes),
                "recorded_at": now,
                "topic": item.topic,
                "partition": item.partition,
                "offset": item.offset,
                "attributes": attributes,
            }
        )
    if not new:
        return Recorded(stored=False)
    await repo.insert_many(rows)  # before the timelines are read back below
    facts = await refresh_facts_many(session=session, post_ids={e.subject for e, _ in new})
    volume: dict[tuple[str, str, datetime], int] = defaultdict(int)
    for envelope, attributes in new:
        prometheus.observe_event(
            event_type=envelope.type,
            occurred_at=_occurred_at(envelope.time, attributes),
            facts=facts[envelope.subject],
            attributes=attributes,
        )
        for kind, key, at in volume_keys(envelope.type, attributes, envelope.time):
            volume[(kind, key, bucket_start(at, Interval.HOUR))] += 1
    spikes: list[Envelope[VolumeSpikeV1]] = []
    for (kind, key, hour), n in volume.items():
        spike = await count_volume(
            session=session,
            kind=kind,
            key=key,
            at=hour,
            now=now,
            rule=spike_rule or SpikeRule(),
            emit_window=spike_emit_window,
            n=n,
        )
        if spike is not None:
            spikes.append(spike)
    return Recorded(stored=True, spikes=spikes)


def _occurred_at(envelope_time: datetime, attributes: dict[str, Any]) -> datetime:
    value = attributes.get("occurred_at")
    return parse_time(value) if value else envelope_time


async def refresh_facts(*, session: AsyncSession, post_id: str) -> PostFacts:
    return (await refresh_facts_many(session=session, post_ids={post_id}))[post_id]


async def refresh_facts_many(*, session: AsyncSession, post_ids: Collection[str]) -> dict[str, PostFacts]:
    """Refold the posts' facts from their stored timelines and mark their day rollups stale."""
    ids = sorted(post_ids)
    timelines: dict[str, list[EventRecord]] = {p: [] for p in ids}
    for e in await PostEventRepository(session).timelines(ids):
        timelines[e.post_id].append(EventRecord(e.event_id, e.type, e.occurred_at, e.attributes))
    facts = {p: fold(p, timelines[p]) for p in ids}
    repo = PostFactRepository(session)
    rollups = RollupRepository(session)
    before = await rollups.fact_cells(ids)
    await repo.upsert_many([f.columns() for f in facts.values()])
    await repo.replace_labels_many({p: f.labels for p, f in facts.items()})
    await repo.add_departments_many({p: f.departments for p, f in facts.items()})
    # The day rollups of the cell each post was in and the one it is in now are stale.
    dirty: set[tuple[str, datetime]] = set()
    for p, f in facts.items():
        for department, received_at in {before.get(p, (None, None)), (f.department, f.received_at)}:
            if received_at is not None:
                dirty.add((department or NO_DEPARTMENT, bucket_start(received_at, Interval.DAY)))
    await rollups.mark_dirty_many(dirty)
    return facts


def volume_keys(
    event_type: str, attributes: dict[str, Any], time: datetime
) -> list[tuple[str, str, datetime]]:
    """Which volume counters one event adds to: hashtags when a post arrives, its department once routed."""
    if event_type == T_RECEIVED:
        at = parse_time(attributes.get("received_at") or time)
        return [("hashtag", tag, at) for tag in attributes.get("hashtags") or ()]
    if event_type == T_CREATED and attributes.get("department"):
        at = parse_time(attributes.get("post_received_at") or attributes.get("occurred_at") or time)
        return [("department", str(attributes["department"]), at)]
    return []


async def count_volume(
    *,
    session: AsyncSession,
    kind: str,
    key: str,
    at: datetime,
    now: datetime,
    rule: SpikeRule,
    emit_window: timedelta,
    n: int = 1,
) -> Envelope[VolumeSpikeV1] | None:
    """Add ``n`` posts to their hour; when that first makes the hour a spike, record it and return the event.

    Spikes of hours older than ``emit_window`` are recorded but not announced: rebuilding metrics from the
    beginning of the topics must not page supervisors about last month.
    """
    repo = VolumeRepository(session)
    hour = bucket_start(at, Interval.HOUR)
    count = await repo.increment(kind=kind, key=key, bucket_start=hour, by=n)
    if count < rule.min_count:
        return None  # cheap exit: most hours never reach the floor
    baseline_rows = await repo.counts(
        kind=kind, key=key, keys=None, start=hour - timedelta(hours=rule.baseline_hours), end=hour
    )
    decision = detect_spike(
        count=count, baseline=[int(count) for _key, _hour, count in baseline_rows], rule=rule
    )
    if not decision.is_spike or await repo.spike_exists(kind=kind, key=key, bucket_start=hour):
        return None
    emit = hour >= now - emit_window
    spike = VolumeSpike(
        id=str(uuid.uuid4()),
        kind=kind,
        key=key,
        bucket_start=hour,
        count=count,
        baseline_mean=decision.mean,
        baseline_stddev=decision.stddev,
        threshold=decision.threshold,
        detected_at=now,
        emitted=emit,
    )
    await repo.add_spike(spike)
    prometheus.VOLUME_SPIKES.labels(kind).inc()
    if not emit:
        return None
    return new_event(
        VolumeSpikeV1(
            spike_id=spike.id,
            kind=kind,
            key=key,
            bucket_start=hour,
            count=count,
            baseline_mean=decision.mean,
            baseline_stddev=decision.stddev,
            threshold=decision.threshold,
            detected_at=now,
        ),
        source=SOURCE,
        time=now,
    )


# --- timeliness ---------------------------------------------------------------------------------------------

DURATIONS = (
    "time_to_assign",
    "time_to_first_response",
    "time_to_resolve",
    "business_time_to_assign",
    "business_time_to_first_response",
    "business_time_to_resolve",
)
PERCENTILES = (50.0, 90.0, 99.0)


@dataclass
class GroupSummary:
    group: str | None
    bucket_start: datetime
    posts: int = 0
    answered: int = 0
    sla_met: int = 0
    sla_determined: int = 0
    breaches: int = 0
    durations: dict[str, list[float]] = field(default_factory=lambda: {d: [] for d in DURATIONS})

    @property
    def sla_attainment_pct(self) -> float | None:
        return attainment(self.sla_met, self.sla_determined)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "bucket_start": self.bucket_start,
            "posts": self.posts,
            "answered": self.answered,
            "durations": self.percentiles(),
            "sla_met": self.sla_met,
            "sla_determined": self.sla_determined,
            "sla_attainment_pct": self.sla_attainment_pct,
            "breaches": self.breaches,
        }

    def percentiles(self) -> dict[str, dict[str, float | int | None]]:
        out: dict[str, dict[str, float | int | None]] = {}
        for name, values in self.durations.items():
            values.sort()
            out[name] = {"count": len(values)} | {f"p{int(p)}": percentile(values, p) for p in PERCENTILES}
        return out


def summarise_timeliness(*, rows: Iterable[Sequence[Any]], interval: Interval) -> list[GroupSummary]:
    """Group fact rows ``(group, received_at, first_response_at, 6 durations, sla_met, breached x2)``."""
    groups: dict[tuple[str | None, datetime], GroupSummary] = {}
    for row in rows:
        group = None if row[0] is None else str(row[0])
        start = bucket_start(row[1], interval)
        g = groups.get((group, start))
        if g is None:
            g = groups[(group, start)] = GroupSummary(group=group, bucket_start=start)
        g.posts += 1
        g.answered += row[2] is not None
        for name, value in zip(DURATIONS, row[3:9], strict=True):
            if value is not None:
                g.durations[name].append(float(value))
        if row[9] is not None:
            g.sla_determined += 1
            g.sla_met += bool(row[9])
        g.breaches += bool(row[10]) or bool(row[11])
    return sorted(groups.values(), key=lambda g: (g.bucket_start, g.group or ""))


def summaries_from_aggregate(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows of ``PostFactRepository.timeliness_summary_pg`` in the shape ``GroupSummary.as_dict`` gives."""
    out = []
    for row in rows:
        bucket: datetime = row[1] if row[1].tzinfo else row[1].replace(tzinfo=UTC)
        durations: dict[str, dict[str, float | int | None]] = {}
        for i, name in enumerate(DURATIONS):
            count, ps = int(row[4 + 2 * i]), row[5 + 2 * i] or (None, None, None)
            durations[name] = {"count": count, "p50": ps[0], "p90": ps[1], "p99": ps[2]}
        sla_met, sla_determined = int(row[16]), int(row[17])
        out.append(
            {
                "group": None if row[0] is None else str(row[0]),
                "bucket_start": bucket,
                "posts": int(row[2]),
                "answered": int(row[3]),
                "durations": durations,
                "sla_met": sla_met,
                "sla_determined": sla_determined,
                "sla_attainment_pct": attainment(sla_met, sla_determined),
                "breaches": int(row[18]),
            }
        )
    return sorted(out, key=lambda r: (r["bucket_start"], r["group"] or ""))


async def _live_timeliness(
    *,
    session: AsyncSession,
    start: datetime,
    end: datetime,
    group_by: str,
    departments: set[str] | None,
    interval: Interval,
    max_rows: int,
) -> list[dict[str, Any]]:
    """Per group and bucket: posts, answered, exact percentiles, SLA attainment, breaches.

    PostgreSQL aggregates in the database (percentile_disc); SQLite, which has no ordered-set aggregates,
    streams the facts and the same nearest-rank percentile is taken here. Both give identical numbers.
    """
    repo = PostFactRepository(session)
    if session.get_bind().dialect.name == "postgresql":
        rows = await repo.timeliness_summary_pg(
            start=start, end=end, group_by=group_by, departments=departments, interval=interval.value
        )
        return summaries_from_aggregate(rows)
    facts = await repo.timeliness_rows(
        start=start, end=end, group_by=group_by, departments=departments, limit=max_rows + 1
    )
    if len(facts) > max_rows:
        raise TooManyRows(max_rows)
    return [g.as_dict() for g in summarise_timeliness(rows=facts, interval=interval)]


#: The rollup cell of posts not routed to a department yet (``group: null``).
NO_DEPARTMENT = ""
ROLLUP_FIELDS = (
    "posts",
    "answered",
    "durations",
    "sla_met",
    "sla_determined",
    "sla_attainment_pct",
    "breaches",
)


def _is_midnight(at: datetime) -> bool:
    return bucket_start(at, Interval.DAY) == at


async def timeliness(
    *,
    session: AsyncSession,
    start: datetime,
    end: datetime,
    group_by: str,
    departments: set[str] | None,
    interval: Interval,
    max_rows: int,
    use_rollups: bool = True,
) -> list[dict[str, Any]]:
    """Per group and bucket: posts, answered, exact percentiles, SLA attainment, breaches.

    By department in whole UTC days, clean days come from the ``timeliness_day`` rollup and only days with a
    pending change are computed live: the same exact numbers, without reading every post of the window.
    """
    whole_days = interval is Interval.DAY and _is_midnight(start) and _is_midnight(end)
    if not (use_rollups and group_by == "department" and whole_days):
        return await _live_timeliness(
            session=session,
            start=start,
            end=end,
            group_by=group_by,
            departments=departments,
            interval=interval,
            max_rows=max_rows,
        )
    cells, dirty = await RollupRepository(session).cells_and_dirty_days(
        start=start, end=end, departments=departments
    )
    out: list[dict[str, Any]] = [
        {"group": department or None, "bucket_start": day} | {k: summary[k] for k in ROLLUP_FIELDS}
        for department, day, summary in cells
    ]
    for day in sorted(dirty):
        out += await _live_timeliness(
            session=session,
            start=day,
            end=day + timedelta(days=1),
            group_by=group_by,
            departments=departments,
            interval=interval,
            max_rows=max_rows,
        )
    return sorted(out, key=lambda r: (r["bucket_start"], r["group"] or ""))


@dataclass
class RollupSettle:
    """When the background pass recomputes a stale rollup cell: once the cell has been quiet for a whole
    pass (no new mark since the previous pass saw it), or once it has waited ``max_wait`` seconds; and
    never sooner than ``cost_factor`` times its last recompute's duration after that recompute.

    A recompute reads every post of the cell's day. While posts flow, every consumer batch marks today's
    cells again, so recomputing them at every pass (2 s) re-read the whole day over and over, and its cost
    grew with the posts per day; the rollup of a cell marked since was not used anyway (queries compute
    dirty days live). A cell marked once (a late event about an old day) is recomputed at the next pass.
    The cost spacing bounds the share of a core the recomputes take (1 / ``cost_factor``) however many posts
    a day holds: the benchmark's day of 100,000 posts took seconds to recompute, and recomputing it every
    30 s while posts flowed took a core away from the pipeline. Per process, in memory: a restart only
    delays a recompute by one pass."""

    max_wait: float = 30.0
    cost_factor: float = 20.0
    #: (department, day) -> (the version the last pass saw, when a pass first saw the cell dirty).
    seen: dict[tuple[str, datetime], tuple[int, float]] = field(default_factory=dict)
    #: (department, day) -> the earliest time of its next recompute (cost spacing).
    not_before: dict[tuple[str, datetime], float] = field(default_factory=dict)

    def due(self, department: str, day: datetime, version: int, now: float) -> bool:
        key = (department, day)
        prev = self.seen.get(key)
        ready = now >= self.not_before.get(key, now)
        if ready and prev is not None and (prev[0] == version or now - prev[1] >= self.max_wait):
            del self.seen[key]
            return True
        self.seen[key] = (version, now if prev is None else prev[1])
        return False

    def recomputed(self, department: str, day: datetime, seconds: float, now: float) -> None:
        self.not_before[(department, day)] = now + self.cost_factor * seconds

    def keep_only(self, cells: Collection[tuple[str, datetime]], now: float) -> None:
        """Forget cells no longer dirty (another replica recomputed them), and spacings that have passed."""
        self.seen = {k: v for k, v in self.seen.items() if k in cells}
        self.not_before = {k: t for k, t in self.not_before.items() if t > now}


@dataclass(frozen=True)
class RollupCell:
    department: str
    day: datetime
    version: int


async def due_rollup_cells(
    *, session: AsyncSession, limit: int = 200, settle: RollupSettle | None = None, now: float
) -> list[RollupCell]:
    """Up to ``limit`` stale (department, day) cells to recompute: with ``settle`` (the background pass), only
    the cells it says are due; without, every stale cell read."""
    cells = [RollupCell(d, day, v) for d, day, v in await RollupRepository(session).dirty_cells(limit)]
    if settle is None:
        return cells
    if len(cells) < limit:
        settle.keep_only({(c.department, c.day) for c in cells}, now)
    return [c for c in cells if settle.due(c.department, c.day, c.version, now)]


async def rollup_summary(
    *, session: AsyncSession, cell: RollupCell, max_rows: int = 1_000_000
) -> dict[str, Any] | None:
    """A cell's day summarised live (the read that makes a recompute expensive: every post of its day)."""
    day = cell.day
    if cell.department == NO_DEPARTMENT:
        # Posts without a department match no department filter: read them with the unfiltered query.
        rows = await _live_timeliness(
            session=session,
            start=day,
            end=day + timedelta(days=1),
            group_by="department",
            departments=None,
            interval=Interval.DAY,
            max_rows=max_rows,
        )
        rows = [r for r in rows if r["group"] is None]
    else:
        rows = await _live_timeliness(
            session=session,
            start=day,
            end=day + timedelta(days=1),
            group_by="department",
            departments={cell.department},
            interval=Interval.DAY,
            max_rows=max_rows,
        )
    return {k: rows[0][k] for k in ROLLUP_FIELDS} if rows else None


async def store_rollup(*, session: AsyncSession, cell: RollupCell, summary: dict[str, Any] | None) -> None:
    """Store a recomputed cell and clear the marks it saw (a mark made since keeps the cell dirty)."""
    rollups = RollupRepository(session)
    await rollups.put(department=cell.department, day=cell.day, summary=summary)
    await rollups.clear_dirty(department=cell.department, day=cell.day, version=cell.version)


async def refresh_rollups(
    *,
    session: AsyncSession,
    limit: int = 200,
    max_rows: int = 1_000_000,
    settle: RollupSettle | None = None,
    monotonic: float | None = None,
) -> int:
    """Recompute up to ``limit`` stale (department, day) rollups in one transaction; returns how many were
    recomputed. (The service's background pass runs the same steps in three transactions: see main.py.)"""
    now = time.monotonic() if monotonic is None else monotonic
    cells = await due_rollup_cells(session=session, limit=limit, settle=settle, now=now)
    for cell in cells:
        started = time.perf_counter()
        summary = await rollup_summary(session=session, cell=cell, max_rows=max_rows)
        await store_rollup(session=session, cell=cell, summary=summary)
        if settle is not None:
            settle.recomputed(cell.department, cell.day, time.perf_counter() - started, now)
    return len(cells)


class TooManyRows(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} posts")
        self.limit = limit


def attainment(met: int, determined: int) -> float | None:
    return None if determined == 0 else round(100.0 * met / determined, 2)


def group_by_department_filter(departments: set[str] | None, requested: str | None) -> set[str] | None:
    """The departments a query may read: a supervisor's own (narrowed by ``requested``), or all (None)."""
    if requested is None:
        return departments
    if departments is None:
        return {requested}
    return {requested} & departments


def waiting_age(since: datetime | str | None, now: datetime) -> float | None:
    if since is None:
        return None
    # min() over a CASE loses the column type on SQLite: the value may come back as text.
    at = since if isinstance(since, datetime) else datetime.fromisoformat(str(since))
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return max(0.0, (now - at).total_seconds())


async def refresh_backlog_gauges(*, session: AsyncSession, now: datetime) -> int:
    rows = await PostFactRepository(session).backlog(departments=None, now=now)
    prometheus.set_backlog(rows, ages=[waiting_age(r[3], now) for r in rows])
    return len(rows)


def volume_series(rows: Iterable[Sequence[Any]], interval: Interval) -> dict[str, dict[datetime, int]]:
    """Roll hourly counts ``(key, hour, count)`` up to the requested interval."""
    out: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for key, hour, count in rows:
        out[str(key)][bucket_start(hour, interval)] += int(count)
    return out


# --- dead letters -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    dead_letter_id: int
    replay_id: str
    topic: str
    replay_count: int


async def replay_dead_letter(
    *,
    session: AsyncSession,
    outbox: OutboxWriter,
    dead_letter_id: int,
    actor: str,
    reason: str,
    now: datetime,
) -> Replayed:
    """Re-publish a dead letter to its original topic through the outbox, with an audit row, atomically."""
    repo = DeadLetterRepository(session)
    dead = await repo.get(dead_letter_id)
    if dead is None:
        raise NotFound(f"No dead letter {dead_letter_id}.")
    if not dead.original_topic:
        raise Conflict("This dead letter does not say which topic it came from; it cannot be replayed.")
    replay_id = str(uuid.uuid4())
    outbox.add_raw(
        session,
        event_id=dead.event_id or replay_id,
        topic=dead.original_topic,
        key=dead.key or dead.event_id or replay_id,
        value=dead.value,
        headers=replay_headers(dead.headers, replay_id=replay_id),
    )
    replay_count = await repo.record_replay(dead_letter=dead, actor=actor, reason=reason, now=now)
    audit.dead_letter_replayed(
        session, dead, replay_id=replay_id, actor=actor, reason=reason, replay_count=replay_count
    )
    log.info(
        "dead_letter_replayed",
        dead_letter_id=dead.id,
        replay_id=replay_id,
        actor=actor,
        topic=dead.original_topic,
        consumer_group=dead.consumer_group,
    )
    return Replayed(
        dead_letter_id=dead.id,
        replay_id=replay_id,
        topic=dead.original_topic,
        replay_count=replay_count,
    )
