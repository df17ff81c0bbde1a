"""Prometheus metrics only metrics exposes: timeliness histograms, SLA breaches, live backlog, spikes.

Labels are departments, queues, targets and kinds: bounded sets, never a person or a post. The histograms
count events as this process stores them (a restart starts them again); the HTTP API, computed from the
facts tables, is the authoritative number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# From one minute to a week: public-sector targets run from an hour (urgent) to days.
DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 7 * 86400)

TIME_TO_ASSIGN = Histogram(
    "switchboard_time_to_assign_seconds",
    "Wall-clock seconds from received to accepted.",
    ["department"],
    buckets=DURATION_BUCKETS,
)
TIME_TO_FIRST_RESPONSE = Histogram(
    "switchboard_time_to_first_response_seconds",
    "Wall-clock seconds from received to the first published reply.",
    ["department"],
    buckets=DURATION_BUCKETS,
)
TIME_TO_RESOLVE = Histogram(
    "switchboard_time_to_resolve_seconds",
    "Wall-clock seconds from received to resolved.",
    ["department"],
    buckets=DURATION_BUCKETS,
)
SLA_BREACHES = Counter(
    "switchboard_sla_breaches_total", "SLA breach events recorded.", ["department", "target"]
)
VOLUME_SPIKES = Counter("switchboard_volume_spikes_total", "Volume spikes detected.", ["kind"])
BACKLOG_WAITING = Gauge(
    "switchboard_backlog_waiting", "Posts waiting for a responder.", ["department", "queue"]
)
BACKLOG_OPEN = Gauge("switchboard_backlog_open", "Open assignments.", ["department", "queue"])
BACKLOG_AT_RISK = Gauge(
    "switchboard_backlog_at_risk", "Open items past an SLA warning point.", ["department", "queue"]
)
BACKLOG_OLDEST_WAITING = Gauge(
    "switchboard_backlog_oldest_waiting_seconds", "Age of the oldest waiting post.", ["department", "queue"]
)

DURATION_HISTOGRAMS = {
    "switchboard.assignment.accepted.v1": ("accepted_at", "assign_seconds", TIME_TO_ASSIGN),
    "switchboard.reply.published.v1": ("first_response_at", "first_response_seconds", TIME_TO_FIRST_RESPONSE),
    "switchboard.assignment.resolved.v1": ("resolved_at", "resolve_seconds", TIME_TO_RESOLVE),
}


def observe_event(*, event_type: str, occurred_at: Any, facts: Any, attributes: dict[str, Any]) -> None:
    """Called once per newly stored event, after its post's facts were refolded."""
    department = str(attributes.get("department") or "unknown")
    if event_type == "switchboard.sla.breached.v1":
        SLA_BREACHES.labels(department, str(attributes.get("target") or "unknown")).inc()
        return
    spec = DURATION_HISTOGRAMS.get(event_type)
    if spec is None:
        return
    at_name, seconds_name, histogram = spec
    # Only the event that ends the span (the first acceptance, first reply, first resolution) is observed.
    seconds = getattr(facts, seconds_name)
    if seconds is not None and getattr(facts, at_name) == occurred_at:
        histogram.labels(department).observe(seconds)


def set_backlog(rows: Sequence[Any], *, ages: Sequence[float | None]) -> None:
    """Replace the backlog gauges with the current queues (queues that emptied disappear)."""
    for gauge in (BACKLOG_WAITING, BACKLOG_OPEN, BACKLOG_AT_RISK, BACKLOG_OLDEST_WAITING):
        gauge.clear()
    for row, age in zip(rows, ages, strict=True):
        labels = (str(row[0] or "unknown"), str(row[1] or "unknown"))
        BACKLOG_WAITING.labels(*labels).set(int(row[2] or 0))
        BACKLOG_OPEN.labels(*labels).set(int(row[4] or 0))
        BACKLOG_AT_RISK.labels(*labels).set(int(row[6] or 0))
        BACKLOG_OLDEST_WAITING.labels(*labels).set(age or 0.0)
