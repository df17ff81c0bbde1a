"""SLA clocks: business-time arithmetic over a department's calendar. Pure: no I/O, ``now`` is passed in.

A calendar is the department's IANA zone, its opening hours per weekday (several windows a day for split
shifts), the public holidays of its Australian state and its own closure days. Each day's windows are built in
local wall time and only then converted to UTC, so 23- and 25-hour DST days come out right (policy-checks.md
3.2 rule 4). Crisis work runs on a wall clock (``calendar=None``). A clock can be paused (awaiting the public)
by carrying the business seconds already consumed into the next running segment.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

AU_STATES = frozenset({"ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"})
#: A calendar that opens less than this often is a configuration mistake, not a reason to loop for ever.
MAX_SCAN_DAYS = 3 * 366


@lru_cache(maxsize=256)
def state_holidays(state: str, year: int) -> frozenset[date]:
    """Public holidays of an Australian state or territory (the ``holidays`` package, public category)."""
    return frozenset(holidays_lib.country_holidays("AU", subdiv=state, years=year).keys())


@dataclass(frozen=True)
class Calendar:
    """When a department works. ``hours`` maps weekday (0 = Monday) to local (start, end) windows."""

    tz: ZoneInfo
    hours: Mapping[int, Sequence[tuple[time, time]]]
    state: str | None = None
    closures: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        if day in self.closures:
            return False
        return not (self.state is not None and day in state_holidays(self.state, day.year))

    def windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's business windows as UTC instants (empty on holidays, closures and closed weekdays)."""
        if not self.is_working_day(day):
            return []
        out = []
        for start, end in self.hours.get(day.weekday(), ()):
            # Wall time -> UTC through the zone: a 09:00-17:00 window is 8 h on every day, DST or not, except
            # when a transition falls inside it (then it is 7 or 9 real hours, which is what staff work).
            s = datetime.combine(day, start, tzinfo=self.tz).astimezone(UTC)
            e = datetime.combine(day, end, tzinfo=self.tz).astimezone(UTC)
            if e > s:
                out.append((s, e))
        return out

    def windows_from(
        self, instant: datetime, until: datetime | None = None
    ) -> Iterator[tuple[datetime, datetime]]:
        """Business windows (clipped) from ``instant`` on, in order, up to ``until`` or MAX_SCAN_DAYS days."""
        day = instant.astimezone(self.tz).date() - timedelta(
            days=1
        )  # a window may start the local day before
        days = MAX_SCAN_DAYS if until is None else (until - instant).days + 3
        for _ in range(days):
            for s, e in self.windows(day):
                if e <= instant:
                    continue
                yield max(s, instant), e
            day += timedelta(days=1)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(UTC)


def business_seconds_between(calendar: Calendar | None, start: datetime, end: datetime) -> float:
    """Business seconds in [start, end); wall-clock seconds when ``calendar`` is None. Never negative."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return 0.0
    if calendar is None:
        return (end - start).total_seconds()
    total = 0.0
    for s, e in calendar.windows_from(start, end):
        if s >= end:
            break
        total += (min(e, end) - s).total_seconds()
    return total


def add_business_seconds(calendar: Calendar | None, start: datetime, seconds: float) -> datetime:
    """The instant at which ``seconds`` of business time have elapsed after ``start``.

    ``seconds == 0`` returns ``start`` itself, even outside business hours (the target is already due).
    Raises ValueError if the calendar has no business time within MAX_SCAN_DAYS.
    """
    start = _utc(start)
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    if calendar is None or seconds == 0:
        return start + timedelta(seconds=seconds)
    remaining = seconds
    for s, e in calendar.windows_from(start):
        length = (e - s).total_seconds()
        if remaining <= length:
            return s + timedelta(seconds=remaining)
        remaining -= length
    raise ValueError("the calendar has no business time in the next three years")


def has_business_time(calendar: Calendar) -> bool:
    return any(calendar.hours.get(d) for d in range(7))


@dataclass(frozen=True)
class Target:
    """One SLA target of an assignment: how long, how much is used, and whether it runs now."""

    total_seconds: float
    consumed_seconds: float  # business (or wall) seconds used in earlier, finished running segments
    running_since: datetime | None  # None while paused or met


@dataclass(frozen=True)
class Deadline:
    due_at: datetime
    warn_at: datetime


def deadline(
    *, calendar: Calendar | None, target: Target, warning_fraction: float, now: datetime
) -> Deadline | None:
    """When a running target is due and when to warn. None while the clock is paused or stopped.

    Warning fires when ``warning_fraction`` of the target is used (e.g. 0.75 of 8.5 business hours).
    """
    if target.running_since is None:
        return None
    del now  # the deadline depends only on the clock's state, never on when it is asked
    left = max(0.0, target.total_seconds - target.consumed_seconds)
    warn_left = max(0.0, target.total_seconds * warning_fraction - target.consumed_seconds)
    return Deadline(
        due_at=add_business_seconds(calendar, target.running_since, left),
        warn_at=add_business_seconds(calendar, target.running_since, warn_left),
    )


def pause(*, calendar: Calendar | None, target: Target, now: datetime) -> Target:
    """Stop the clock (awaiting the public, or met): bank the time used so far."""
    if target.running_since is None:
        return target
    used = business_seconds_between(calendar, target.running_since, now)
    return Target(target.total_seconds, target.consumed_seconds + used, None)


def resume(*, target: Target, now: datetime) -> Target:
    if target.running_since is not None:
        return target
    return Target(target.total_seconds, target.consumed_seconds, _utc(now))


def parse_hours(raw: Mapping[str, Iterable[tuple[str, str]]]) -> dict[int, list[tuple[time, time]]]:
    """``{"mon": [["08:30", "12:00"], ["13:00", "17:00"]]}`` -> weekday-indexed windows; raises ValueError."""
    out: dict[int, list[tuple[time, time]]] = {}
    for name, windows in raw.items():
        if name not in WEEKDAYS:
            raise ValueError(f"unknown weekday {name!r}; use one of {', '.join(WEEKDAYS)}")
        parsed = []
        for start_s, end_s in windows:
            start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
            if end <= start:
                raise ValueError(f"{name}: window {start_s}-{end_s} must end after it starts")
            parsed.append((start, end))
        parsed.sort()
        for (_, e1), (s2, _) in itertools.pairwise(parsed):
            if s2 < e1:
                raise ValueError(f"{name}: windows overlap")
        out[WEEKDAYS.index(name)] = parsed
    return out


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
