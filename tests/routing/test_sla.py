"""Business-time SLA clocks: the worked cases of policy-checks.md 3.4, DST, state holidays, split shifts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.sla import (
    Calendar,
    Target,
    add_business_seconds,
    business_seconds_between,
    deadline,
    parse_hours,
    pause,
    resume,
)

WEEKDAYS_0830_1700 = {d: [("08:30", "17:00")] for d in ("mon", "tue", "wed", "thu", "fri")}
H = 3600.0


def cal(zone: str, state: str | None, hours=WEEKDAYS_0830_1700, closures=()) -> Calendar:
    return Calendar(ZoneInfo(zone), parse_hours(hours), state, frozenset(closures))


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


class TestWorkedCases:
    def test_canberra_friday_afternoon_skips_act_kings_birthday(self) -> None:
        c = cal("Australia/Sydney", "ACT")
        due = add_business_seconds(c, local("Australia/Sydney", 2025, 6, 6, 16), 8.5 * H)
        assert due == local("Australia/Sydney", 2025, 6, 10, 16)

    def test_wa_day_is_closed_in_perth_but_9_june_is_open(self) -> None:
        perth = cal("Australia/Perth", "WA")
        assert not perth.is_working_day(date(2025, 6, 2))
        assert perth.is_working_day(date(2025, 6, 9))
        due = add_business_seconds(perth, local("Australia/Perth", 2025, 6, 6, 16), 8.5 * H)
        assert due == local("Australia/Perth", 2025, 6, 9, 16)

    def test_queensland_kings_birthday_differs_from_new_south_wales(self) -> None:
        assert not cal("Australia/Brisbane", "QLD").is_working_day(date(2025, 10, 6))
        # 6 Oct 2025 is Labour Day in NSW: closed too, but 9 June (NSW King's Birthday) is open in QLD.
        assert cal("Australia/Brisbane", "QLD").is_working_day(date(2025, 6, 9))
        assert not cal("Australia/Sydney", "NSW").is_working_day(date(2025, 6, 9))

    def test_counting_across_the_dst_end_weekend(self) -> None:
        c = cal("Australia/Sydney", "NSW")
        start = local("Australia/Sydney", 2025, 4, 4, 16)  # Friday, AEDT
        end = local("Australia/Sydney", 2025, 4, 7, 12)  # Monday, AEST
        assert business_seconds_between(c, start, end) == 1 * H + 3.5 * H


class TestDst:
    @pytest.mark.parametrize(
        ("day", "hours"),
        [(date(2025, 10, 5), 5.0), (date(2025, 4, 6), 7.0), (date(2025, 4, 13), 6.0)],
    )
    def test_a_window_spanning_the_transition_has_real_length(self, day: date, hours: float) -> None:
        c = cal("Australia/Sydney", None, {"sun": [("00:00", "06:00")]})
        ((s, e),) = c.windows(day)
        assert (e - s).total_seconds() == hours * H

    def test_brisbane_has_no_dst(self) -> None:
        c = cal("Australia/Brisbane", None, {"sun": [("00:00", "06:00")]})
        ((s, e),) = c.windows(date(2025, 10, 5))
        assert (e - s).total_seconds() == 6 * H


class TestSpans:
    def test_split_shift_lunch_break_does_not_count(self) -> None:
        c = cal("Australia/Melbourne", "VIC", {"mon": [("08:30", "12:00"), ("13:00", "17:00")]})
        start = local("Australia/Melbourne", 2025, 6, 2, 11)
        assert add_business_seconds(c, start, 2 * H) == local("Australia/Melbourne", 2025, 6, 2, 14)

    def test_overnight_and_weekend_spans_count_nothing(self) -> None:
        c = cal("Australia/Adelaide", "SA")
        fri = local("Australia/Adelaide", 2025, 8, 15, 17)
        mon = local("Australia/Adelaide", 2025, 8, 18, 8, 30)
        assert business_seconds_between(c, fri, mon) == 0
        assert add_business_seconds(c, fri, 60) == mon + timedelta(seconds=60)

    def test_closure_days_are_skipped(self) -> None:
        closures = [date(2025, 12, d) for d in (29, 30, 31)] + [date(2026, 1, 2)]
        c = cal("Australia/Sydney", "ACT", closures=closures)
        due = add_business_seconds(c, local("Australia/Sydney", 2025, 12, 24, 16), 8.5 * H)
        # 25, 26 Dec holidays, 27-28 weekend, 29-31 closed, 1 Jan holiday, 2 Jan closed, 3-4 weekend.
        assert due == local("Australia/Sydney", 2026, 1, 5, 16)

    def test_wall_clock_for_crisis(self) -> None:
        start = datetime(2025, 12, 25, 3, tzinfo=UTC)
        assert add_business_seconds(None, start, 900) == start + timedelta(minutes=15)

    def test_a_calendar_without_hours_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no business time"):
            add_business_seconds(cal("Australia/Perth", None, {}), datetime(2025, 1, 1, tzinfo=UTC), 60)

    def test_invalid_hours_are_refused(self) -> None:
        with pytest.raises(ValueError, match="overlap"):
            parse_hours({"mon": [("08:00", "12:00"), ("11:00", "13:00")]})
        with pytest.raises(ValueError, match="end after"):
            parse_hours({"mon": [("12:00", "08:00")]})
        with pytest.raises(ValueError, match="weekday"):
            parse_hours({"monday": [("08:00", "12:00")]})


class TestPause:
    def test_paused_clock_has_no_deadline_and_resume_carries_the_used_time(self) -> None:
        c = cal("Australia/Sydney", "NSW")
        start = local("Australia/Sydney", 2025, 8, 4, 9)  # Monday
        t = Target(8.5 * H, 0.0, start.astimezone(UTC))
        paused = pause(calendar=c, target=t, now=local("Australia/Sydney", 2025, 8, 4, 11))
        assert paused.consumed_seconds == 2 * H
        assert deadline(calendar=c, target=paused, warning_fraction=0.75, now=start) is None
        # Paused for two days: the clock does not run while the public is asked.
        resumed = resume(target=paused, now=local("Australia/Sydney", 2025, 8, 6, 9))
        d = deadline(calendar=c, target=resumed, warning_fraction=0.75, now=start)
        assert d is not None
        assert d.due_at == local("Australia/Sydney", 2025, 8, 6, 15, 30)  # 6.5 h left, same day
        assert d.warn_at == local("Australia/Sydney", 2025, 8, 6, 13, 22, 30)  # 0.75 * 8.5 h - 2 h = 4.375 h


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(start=moments, seconds=st.floats(min_value=1, max_value=40 * H))
    def test_adding_business_time_then_measuring_it_round_trips(
        self, start: datetime, seconds: float
    ) -> None:
        c = cal(
            "Australia/Sydney",
            "NSW",
            {"mon": [("08:30", "12:00"), ("13:00", "17:00")], "sat": [("01:30", "03:30")]},
        )
        due = add_business_seconds(c, start, seconds)
        assert due > start
        assert business_seconds_between(c, start, due) == pytest.approx(seconds, abs=1e-3)

    @settings(max_examples=150, deadline=None)
    @given(a=moments, b=moments, m=moments)
    def test_business_time_is_additive_and_bounded_by_wall_time(
        self, a: datetime, b: datetime, m: datetime
    ) -> None:
        c = cal("Australia/Perth", "WA")
        a, m, b = sorted((a, b, m))
        whole = business_seconds_between(c, a, b)
        assert whole == pytest.approx(business_seconds_between(c, a, m) + business_seconds_between(c, m, b))
        assert 0 <= whole <= (b - a).total_seconds()
