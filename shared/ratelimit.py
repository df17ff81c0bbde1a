"""Per-principal token buckets: each token subject may make ``burst`` requests at once and ``rate`` per second
after that; one more is answered 429 with Retry-After.

In-process and per instance (N replicas allow N times the rate): the aim is to stop one runaway client or
stolen token from starving everyone else, not to meter exactly. A call costs a dict lookup and a few float
operations (see ``python -m shared.ratelimit`` for the measured cost per call).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from shared.config import RateLimitSettings


class TokenBucket:
    """Token buckets keyed by a string, refilled lazily when the key is next seen."""

    __slots__ = ("_buckets", "_clock", "burst", "max_keys", "rate")

    def __init__(
        self,
        *,
        rate: float,
        burst: float,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        # key -> [tokens left, when they were counted]
        self._buckets: dict[str, list[float]] = {}

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if granted, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                # Bounded memory: forget the longest-known key (a full bucket is what it would get anyway
                # once idle for burst/rate seconds).
                del self._buckets[next(iter(self._buckets))]
            self._buckets[key] = [self.burst - 1.0, now]
            return 0.0
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class PrincipalRateLimiter:
    """People and agency systems get separate budgets (systems relay whole platforms' traffic)."""

    __slots__ = ("enabled", "people", "systems")

    def __init__(self, settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = settings.enabled
        self.people = TokenBucket(
            rate=settings.requests_per_second,
            burst=settings.burst,
            max_keys=settings.max_principals,
            clock=clock,
        )
        self.systems = TokenBucket(
            rate=settings.system_requests_per_second,
            burst=settings.system_burst,
            max_keys=settings.max_principals,
            clock=clock,
        )

    def retry_after(self, subject: str, *, system: bool) -> int:
        """0 if the request may proceed, else whole seconds to wait (at least 1), for Retry-After."""
        if not self.enabled:
            return 0
        wait = (self.systems if system else self.people).acquire(subject)
        return 0 if wait == 0.0 else max(1, math.ceil(wait))


def _measure() -> None:
    """Print the cost of one limiter call (CPU time, so other load on the machine matters less)."""
    limiter = PrincipalRateLimiter(
        RateLimitSettings(
            requests_per_second=1e6, burst=1e6, system_requests_per_second=1e6, system_burst=1e6
        )
    )
    subjects = [f"subject-{i}" for i in range(1000)]
    n = 1_000_000
    for s in subjects:
        limiter.retry_after(s, system=False)
    started = time.process_time_ns()
    for i in range(n):
        limiter.retry_after(subjects[i % 1000], system=False)
    elapsed = time.process_time_ns() - started
    print(f"| calls | ns per call (CPU) |\n|---|---|\n| {n:,} | {elapsed / n:.0f} |")


if __name__ == "__main__":
    _measure()
