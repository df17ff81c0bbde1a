"""HTTP in: timelines, timeliness (JSON and CSV), backlog, volume and spikes. Thin: validate, call, map."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import exc as sa_exc

from services.metrics import service
from services.metrics.config import MetricsSettings
from services.metrics.models import PostFact
from services.metrics.ops import probe_all
from services.metrics.repository import (
    DeadLetterRepository,
    PostEventRepository,
    PostFactRepository,
    VolumeRepository,
    set_statement_timeout,
)
from services.metrics.schemas import (
    Backlog,
    BacklogQueue,
    DeadLetterCount,
    DeadLetterPage,
    DeadLetterRead,
    DeadLetterSummary,
    DurationStats,
    GroupBy,
    GroupLag,
    OpsStatus,
    PartitionLag,
    PostFactsRead,
    ReplayAccepted,
    ReplayRequest,
    ServiceStatus,
    SpikeRead,
    Spikes,
    Timeline,
    TimelineEntry,
    TimelinessReport,
    TimelinessRow,
    Volume,
    VolumePoint,
    VolumeSeries,
)
from services.metrics.stats import Interval
from shared.auth import Principal, Role, authenticated, require_roles
from shared.deps import SessionDep
from shared.errors import FieldProblem, NotFound, ServiceError, Unavailable, problem_responses
from shared.http import DEFAULT_PAGE_SIZE, PageLimit

# Every /v1 route needs a valid bearer token, checked before anything else runs.
router = APIRouter(
    prefix="/v1",
    tags=["timeliness"],
    responses=problem_responses(401, 403),
    dependencies=[Depends(authenticated)],
)

Reader = Annotated[Principal, Depends(require_roles(Role.OPS, Role.SUPERVISOR))]
T = TypeVar("T")


def get_settings(request: Request) -> MetricsSettings:
    settings: MetricsSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[MetricsSettings, Depends(get_settings)]

FromQ = Annotated[
    datetime, Query(alias="from", description="Start (inclusive) of the received-at window, with offset.")
]
ToQ = Annotated[datetime, Query(alias="to", description="End (exclusive) of the window, with offset.")]
DepartmentQ = Annotated[str | None, Query(max_length=100, description="Only this department.")]


class InvalidQuery(ServiceError):
    status_code = 422

    def __init__(self, field: str, reason: str) -> None:
        super().__init__("The request is not valid.", errors=[FieldProblem(field=field, reason=reason)])


def visible_departments(principal: Principal) -> set[str] | None:
    """None: every department (ops, admin); else the supervisor's own."""
    if principal.has_any({Role.ADMIN, Role.OPS}):
        return None
    return set(principal.departments)


def checked_window(start: datetime, end: datetime, *, max_days: int) -> tuple[datetime, datetime]:
    for name, value in (("query.from", start), ("query.to", end)):
        if value.tzinfo is None:
            raise InvalidQuery(name, "must carry a UTC offset, e.g. 2026-11-26T00:00:00Z")
    if end <= start:
        raise InvalidQuery("query.to", "must be after from")
    if end - start > timedelta(days=max_days):
        raise InvalidQuery("query.to", f"the window may span at most {max_days} days")
    return start.astimezone(UTC), end.astimezone(UTC)


async def bounded(awaitable: Awaitable[T], settings: MetricsSettings) -> T:
    """A metrics query gets the statement timeout (PostgreSQL) and the same bound on the request."""
    try:
        async with asyncio.timeout(settings.query_timeout_ms / 1000 + 0.5):
            return await awaitable
    except (TimeoutError, sa_exc.OperationalError, sa_exc.DBAPIError) as exc:
        if isinstance(exc, sa_exc.DBAPIError) and "statement timeout" not in str(exc.orig):
            raise
        raise Unavailable("The query took too long; narrow the window or the departments.") from exc


@router.get(
    "/posts/{post_id}/timeline",
    response_model=Timeline,
    summary="Every event of one post, in order, with its folded facts",
    responses=problem_responses(404),
)
async def get_timeline(post_id: str, session: SessionDep, principal: Reader) -> Timeline:
    if len(post_id) > 64:
        raise InvalidQuery("path.post_id", "at most 64 characters")
    departments = visible_departments(principal)
    # A supervisor learns nothing about posts outside their departments, not even that they exist.
    if (
        departments is not None
        and not (await PostFactRepository(session).departments_of(post_id)) & departments
    ):
        raise NotFound(f"No events for post {post_id!r}.")
    events = await PostEventRepository(session).timeline(post_id)
    if not events:
        raise NotFound(f"No events for post {post_id!r}.")
    fact = await PostFactRepository(session).get(post_id)
    return Timeline(
        post_id=post_id,
        facts=PostFactsRead.model_validate(fact) if isinstance(fact, PostFact) else None,
        events=[TimelineEntry.model_validate(e) for e in events],
    )


async def _timeliness(
    *,
    session: SessionDep,
    settings: MetricsSettings,
    principal: Principal,
    start: datetime,
    end: datetime,
    group_by: GroupBy,
    interval: Interval,
    department: str | None,
) -> TimelinessReport:
    start, end = checked_window(start, end, max_days=settings.max_query_days)
    if interval is Interval.HOUR and end - start > timedelta(days=31):
        raise InvalidQuery("query.interval", "hourly buckets need a window of at most 31 days")
    departments = service.group_by_department_filter(visible_departments(principal), department)
    await set_statement_timeout(session, settings.query_timeout_ms)
    try:
        summaries = await bounded(
            service.timeliness(
                session=session,
                start=start,
                end=end,
                group_by=group_by,
                departments=departments,
                interval=interval,
                max_rows=settings.max_query_rows,
            ),
            settings,
        )
    except service.TooManyRows as exc:
        raise InvalidQuery("query.from", f"the window holds more than {exc.limit} posts; narrow it") from exc
    out = [
        TimelinessRow(
            group=g["group"],
            bucket_start=g["bucket_start"],
            posts=g["posts"],
            answered=g["answered"],
            sla_attainment_pct=g["sla_attainment_pct"],
            sla_met=g["sla_met"],
            sla_determined=g["sla_determined"],
            breaches=g["breaches"],
            **{name: DurationStats.model_validate(v) for name, v in g["durations"].items()},
        )
        for g in summaries
    ]
    return TimelinessReport(start=start, end=end, group_by=group_by, interval=interval.value, rows=out)


@router.get(
    "/timeliness",
    response_model=TimelinessReport,
    response_model_by_alias=True,
    summary="Time to assign, first response and resolve (p50/p90/p99), SLA attainment and breaches",
    responses=problem_responses(422, 503),
)
async def get_timeliness(
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    start: FromQ,
    end: ToQ,
    group_by: GroupBy = "department",
    interval: Literal["hour", "day", "week"] = "day",
    department: DepartmentQ = None,
) -> TimelinessReport:
    return await _timeliness(
        session=session,
        settings=settings,
        principal=principal,
        start=start,
        end=end,
        group_by=group_by,
        interval=Interval(interval),
        department=department,
    )


CSV_DURATION_FIELDS = [
    f"{name}_{stat}" for name in service.DURATIONS for stat in ("count", "p50", "p90", "p99")
]
CSV_FIELDS = [
    "group",
    "bucket_start",
    "posts",
    "answered",
    *CSV_DURATION_FIELDS,
    "sla_attainment_pct",
    "sla_met",
    "sla_determined",
    "breaches",
]


def _csv_cell(value: object) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    # A cell starting like a formula would run in a spreadsheet (CSV injection): quote it as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@router.get(
    "/reports/timeliness.csv",
    summary="The timeliness query as CSV (one line per group and bucket)",
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(422, 503)},
    response_class=Response,
)
async def get_timeliness_csv(
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    start: FromQ,
    end: ToQ,
    group_by: GroupBy = "department",
    interval: Literal["hour", "day", "week"] = "day",
    department: DepartmentQ = None,
) -> Response:
    report = await _timeliness(
        session=session,
        settings=settings,
        principal=principal,
        start=start,
        end=end,
        group_by=group_by,
        interval=Interval(interval),
        department=department,
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in report.rows:
        values: list[object] = [row.group, row.bucket_start, row.posts, row.answered]
        for name in service.DURATIONS:
            d: DurationStats = getattr(row, name)
            values += [d.count, d.p50, d.p90, d.p99]
        values += [row.sla_attainment_pct, row.sla_met, row.sla_determined, row.breaches]
        writer.writerow([_csv_cell(v) for v in values])
    filename = f"timeliness_{group_by}_{interval}_{report.start:%Y%m%dT%H%M}_{report.end:%Y%m%dT%H%M}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/backlog", response_model=Backlog, summary="Live backlog per queue")
async def get_backlog(session: SessionDep, settings: SettingsDep, principal: Reader) -> Backlog:
    now = datetime.now(UTC)
    await set_statement_timeout(session, settings.query_timeout_ms)
    rows = await bounded(
        PostFactRepository(session).backlog(departments=visible_departments(principal), now=now), settings
    )
    return Backlog(
        as_of=now,
        queues=[
            BacklogQueue(
                department=r[0],
                queue=r[1],
                waiting=int(r[2] or 0),
                oldest_waiting_age_seconds=service.waiting_age(r[3], now),
                open_assignments=int(r[4]),
                responders_with_open_work=int(r[5]),
                at_risk=int(r[6] or 0),
                overdue=int(r[7] or 0),
            )
            for r in rows
        ],
    )


@router.get(
    "/volume",
    response_model=Volume,
    summary="Inbound posts per department or hashtag over time",
    responses=problem_responses(422),
)
async def get_volume(
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    start: FromQ,
    end: ToQ,
    kind: Literal["department", "hashtag"] = "department",
    interval: Literal["hour", "day", "week"] = "hour",
    key: Annotated[str | None, Query(max_length=100)] = None,
) -> Volume:
    start, end = checked_window(start, end, max_days=settings.max_query_days)
    keys = visible_departments(principal) if kind == "department" else None
    await set_statement_timeout(session, settings.query_timeout_ms)
    rows = await bounded(
        VolumeRepository(session).counts(kind=kind, key=key, keys=keys, start=start, end=end), settings
    )
    series = service.volume_series(rows, Interval(interval))
    return Volume(
        kind=kind,
        interval=interval,
        series=[
            VolumeSeries(
                key=k,
                points=[VolumePoint(bucket_start=b, count=c) for b, c in sorted(points.items())],
            )
            for k, points in sorted(series.items())
        ],
    )


@router.get(
    "/spikes", response_model=Spikes, summary="Detected volume spikes", responses=problem_responses(422)
)
async def get_spikes(
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    start: FromQ,
    end: ToQ,
    kind: Literal["department", "hashtag"] | None = None,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
) -> Spikes:
    start, end = checked_window(start, end, max_days=settings.max_query_days)
    spikes = await VolumeRepository(session).spikes(
        start=start, end=end, kind=kind, departments=visible_departments(principal), limit=limit
    )
    return Spikes(spikes=[SpikeRead.model_validate(s) for s in spikes])


# --- ops ----------------------------------------------------------------------------------------------------

ops_router = APIRouter(
    prefix="/v1/ops",
    tags=["ops"],
    responses=problem_responses(401, 403),
    dependencies=[Depends(authenticated)],
)
Ops = Annotated[Principal, Depends(require_roles(Role.OPS))]


@ops_router.get(
    "/status",
    response_model=OpsStatus,
    summary="Readiness of every service, consumer lag and dead letters in one document",
)
async def get_ops_status(request: Request, settings: SettingsDep, _principal: Ops) -> OpsStatus:
    probes = await probe_all(settings.service_urls, probe_timeout=settings.ops_probe_timeout_s)
    lag: dict[str, list[PartitionLag]] = {}
    for probe in probes:
        for group, topics in probe.consumer_lag.items():
            for topic, partitions in topics.items():
                for partition, value in partitions.items():
                    lag.setdefault(group, []).append(
                        PartitionLag(service=probe.name, topic=topic, partition=partition, lag=value)
                    )
    # Its own transaction, not the request's: when metrics' database is down the document still answers.
    counts: list[DeadLetterCount] | None = None
    error: str | None = None
    try:
        async with request.app.state.runtime.database.transaction() as session:
            await set_statement_timeout(session, settings.query_timeout_ms)
            counts = [
                DeadLetterCount(consumer_group=g, original_topic=t, count=int(n))
                for g, t, n in await bounded(DeadLetterRepository(session).counts_by_group(), settings)
            ]
    except Exception as exc:
        error = type(exc).__name__
    return OpsStatus(
        status="ok" if all(p.status == "up" for p in probes) else "degraded",
        checked_at=datetime.now(UTC),
        services=[
            ServiceStatus(
                name=p.name,
                url=p.url,
                status=p.status,
                checks=p.checks,
                error=p.error,
                dead_letters_since_start=p.dead_letters_since_start,
            )
            for p in probes
        ],
        consumer_lag=[
            GroupLag(group=g, total=sum(p.lag for p in parts), partitions=parts)
            for g, parts in sorted(lag.items())
        ],
        dead_letters=DeadLetterSummary(
            total=None if counts is None else sum(c.count for c in counts), by_group=counts or [], error=error
        ),
    )


@ops_router.get(
    "/dead-letters", response_model=DeadLetterPage, summary="Dead-lettered messages, newest first"
)
async def list_dead_letters(
    session: SessionDep,
    _principal: Ops,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    consumer_group: Annotated[str | None, Query(max_length=200)] = None,
) -> DeadLetterPage:
    items = await DeadLetterRepository(session).page(
        after_id=before_id, limit=limit, consumer_group=consumer_group
    )
    return DeadLetterPage(
        items=[DeadLetterRead.model_validate(i) for i in items],
        next_before_id=items[-1].id if len(items) == limit else None,
    )


@ops_router.post(
    "/dead-letters/{dead_letter_id}/replay",
    response_model=ReplayAccepted,
    status_code=202,
    summary="Re-publish one dead letter to its original topic (audited)",
    responses=problem_responses(404, 409, 422),
)
async def replay_dead_letter(
    dead_letter_id: Annotated[int, Path(ge=1, le=2**62)],
    body: ReplayRequest,
    request: Request,
    session: SessionDep,
    principal: Ops,
) -> ReplayAccepted:
    result = await service.replay_dead_letter(
        session=session,
        outbox=request.app.state.runtime.outbox,
        dead_letter_id=dead_letter_id,
        actor=principal.subject,
        reason=body.reason,
        now=datetime.now(UTC),
    )
    return ReplayAccepted(
        dead_letter_id=result.dead_letter_id,
        replay_id=result.replay_id,
        topic=result.topic,
        replay_count=result.replay_count,
    )
