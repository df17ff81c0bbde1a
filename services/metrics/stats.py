"""Pure numbers: exact percentiles, time buckets, spike detection. No I/O, no clock (``now`` is passed in)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"

    @property
    def delta(self) -> timedelta:
        return {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[self.value]


def bucket_start(at: datetime, interval: Interval) -> datetime:
    """Start of the UTC hour, day or ISO week (Monday 00:00 UTC) holding ``at``."""
    at = at.astimezone(UTC)
    if interval is Interval.HOUR:
        return at.replace(minute=0, second=0, microsecond=0)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval is Interval.DAY:
        return day
    return day - timedelta(days=day.weekday())


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Exact nearest-rank percentile: the smallest observed value with at least p% of values <= it.

    ``sorted_values`` must be sorted ascending. Returns None for an empty sample. Nearest-rank never
    interpolates, so every reported percentile is a duration some post really had.
    """
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    n = len(sorted_values)
    if n == 0:
        return None
    # Integer arithmetic on p in thousandths: ceil(0.07 * 100) would be 8 in floating point.
    rank = max(1, -(-round(p * 1000) * n // 100_000))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class SpikeRule:
    """When is an hour's count a spike? All three must hold, so a quiet key needs a real crowd to spike."""

    baseline_hours: int = 24
    min_count: int = 20  # never a spike below this many posts in the hour
    ratio: float = 3.0  # at least this many times the baseline mean
    z: float = 4.0  # and this many standard deviations above it


@dataclass(frozen=True)
class SpikeDecision:
    count: int
    mean: float
    stddev: float
    threshold: float

    @property
    def is_spike(self) -> bool:
        return self.count >= self.threshold


def spike_threshold(*, baseline: Sequence[int], rule: SpikeRule) -> tuple[float, float, float]:
    """(mean, population stddev, threshold) of the baseline hours; missing hours count as zero."""
    hours = max(1, rule.baseline_hours)
    padded = list(baseline[-hours:]) + [0] * max(0, hours - len(baseline))
    mean = sum(padded) / hours
    stddev = math.sqrt(sum((c - mean) ** 2 for c in padded) / hours)
    threshold = max(float(rule.min_count), rule.ratio * mean, mean + rule.z * stddev)
    return mean, stddev, threshold


def detect_spike(*, count: int, baseline: Sequence[int], rule: SpikeRule) -> SpikeDecision:
    mean, stddev, threshold = spike_threshold(baseline=baseline, rule=rule)
    return SpikeDecision(count=count, mean=mean, stddev=stddev, threshold=threshold)
