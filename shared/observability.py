"""Prometheus metrics every service exposes on /metrics. Labels never carry personal information."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUEST_SECONDS = Histogram(
    "switchboard_http_request_seconds",
    "HTTP request latency by route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_CONSUMED = Counter(
    "switchboard_events_consumed_total",
    "Events taken from Kafka by outcome (handled, duplicate, dead_lettered).",
    ["topic", "group", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "switchboard_handler_seconds",
    "Time to handle one partition batch in one transaction.",
    ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HANDLER_FAILURES = Counter(
    "switchboard_handler_failures_total", "Handler attempts that raised.", ["topic", "group"]
)
DEAD_LETTERS = Counter(
    "switchboard_dead_letters_total", "Messages sent to a dead-letter topic.", ["topic", "group"]
)
OUTBOX_PUBLISHED = Counter("switchboard_outbox_published_total", "Outbox rows published to Kafka.", ["topic"])
OUTBOX_BACKLOG = Gauge("switchboard_outbox_backlog", "Outbox rows waiting at the last relay pass.")
OUTBOX_OLDEST_AGE = Gauge(
    "switchboard_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row."
)
CONSUMER_LAG = Gauge(
    "switchboard_consumer_lag", "Messages behind the partition end.", ["topic", "partition", "group"]
)
