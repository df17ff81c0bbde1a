from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.metrics.stats import Interval, SpikeRule, bucket_start, detect_spike, percentile


class TestPercentileIsExactNearestRank:
    def test_known_values(self):
        values = [float(v) for v in range(1, 101)]  # 1..100
        assert percentile(values, 50) == 50
        assert percentile(values, 90) == 90
        assert percentile(values, 99) == 99
        assert percentile([7.0], 99) == 7
        assert percentile([], 50) is None

    def test_rank_is_not_fooled_by_floating_point(self):
        # 0.07 * 100 == 7.000000000000001 in floating point; the 7th percentile of 1..100 is 7.
        assert percentile([float(v) for v in range(1, 101)], 7) == 7

    @given(st.lists(st.floats(0, 1e7, allow_nan=False), min_size=1, max_size=300), st.integers(1, 100))
    def test_smallest_observed_value_with_p_percent_at_or_below(self, values, p):
        values.sort()
        n = len(values)
        result = percentile(values, p)
        assert result in values
        assert sum(v <= result for v in values) * 100 >= p * n
        assert sum(v < result for v in values) * 100 < p * n

    def test_rejects_p_outside_range(self):
        with pytest.raises(ValueError, match="p must be"):
            percentile([1.0], 0)


class TestBuckets:
    @given(
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
    )
    def test_bucket_holds_the_instant_and_is_aligned(self, at):
        for interval in Interval:
            start = bucket_start(at, interval)
            assert start <= at < start + interval.delta
            assert bucket_start(start, interval) == start
        assert bucket_start(at, Interval.WEEK).weekday() == 0

    def test_other_offsets_are_bucketed_in_utc(self):
        sydney = datetime.fromisoformat("2026-11-27T09:30:00+11:00")
        assert bucket_start(sydney, Interval.DAY) == datetime(2026, 11, 26, tzinfo=UTC)


class TestSpikeDetection:
    rule = SpikeRule(baseline_hours=24, min_count=20, ratio=3.0, z=4.0)

    def test_quiet_key_needs_the_floor(self):
        assert not detect_spike(count=19, baseline=[0] * 24, rule=self.rule).is_spike
        assert detect_spike(count=20, baseline=[0] * 24, rule=self.rule).is_spike

    def test_busy_key_needs_a_multiple_of_its_baseline(self):
        baseline = [100] * 24
        assert not detect_spike(count=250, baseline=baseline, rule=self.rule).is_spike
        assert detect_spike(count=300, baseline=baseline, rule=self.rule).is_spike

    def test_noisy_baseline_raises_the_bar(self):
        baseline = [0, 200] * 12  # mean 100, stddev 100
        decision = detect_spike(count=300, baseline=baseline, rule=self.rule)
        assert decision.threshold == pytest.approx(500)
        assert not decision.is_spike

    def test_missing_hours_count_as_zero(self):
        assert detect_spike(count=30, baseline=[10], rule=self.rule).mean == pytest.approx(10 / 24)

    @given(st.lists(st.integers(0, 10_000), max_size=48), st.integers(0, 100_000), st.integers(0, 1000))
    def test_more_posts_never_undo_a_spike(self, baseline, count, extra):
        if detect_spike(count=count, baseline=baseline, rule=self.rule).is_spike:
            assert detect_spike(count=count + extra, baseline=baseline, rule=self.rule).is_spike


def test_week_interval_delta():
    assert Interval.WEEK.delta == timedelta(days=7)
