from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


def _default_service_urls() -> dict[str, str]:
    return {
        "ingest": "http://127.0.0.1:8001",
        "policy": "http://127.0.0.1:8002",
        "routing": "http://127.0.0.1:8003",
        "metrics": "http://127.0.0.1:8004",
    }


class MetricsSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore", env_nested_delimiter="__")

    service_name: str = Field("metrics", description="Name in logs and client ids.")
    port: int = Field(8004, ge=1, le=65535, description="HTTP port.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./var/metrics.db", description="SQLAlchemy async URL of this service's database."
    )

    query_timeout_ms: int = Field(
        5_000, ge=100, le=60_000, description="Statement timeout of metrics queries."
    )
    max_query_days: int = Field(92, ge=1, le=366, description="Longest window a timeliness query may span.")
    max_query_rows: int = Field(
        1_000_000, ge=1_000, le=10_000_000, description="Most posts one timeliness query may read (SQLite)."
    )

    spike_baseline_hours: int = Field(
        24, ge=1, le=24 * 14, description="Hours before a bucket that make its baseline."
    )
    spike_min_count: int = Field(
        20, ge=1, le=1_000_000, description="No spike below this many posts in the hour."
    )
    spike_ratio: float = Field(
        3.0, ge=1.0, le=1000.0, description="A spike is at least this times the baseline mean."
    )
    spike_z: float = Field(
        4.0, ge=0.0, le=100.0, description="...and this many standard deviations above it."
    )
    spike_emit_window_minutes: int = Field(
        120, ge=1, le=7 * 24 * 60, description="Spikes of older hours are recorded but not published."
    )

    backlog_gauge_interval_s: float = Field(
        15.0, ge=1.0, le=3600, description="Refresh of the backlog gauges."
    )
    rollup_interval_s: float = Field(2.0, ge=0.1, le=3600, description="Pause between day-rollup passes.")
    service_urls: dict[str, str] = Field(
        default_factory=_default_service_urls,
        description="Base URLs whose /readyz and /metrics ops/status reads.",
    )
    ops_probe_timeout_s: float = Field(2.0, gt=0, le=30, description="Timeout of each ops/status probe.")
    dead_letter_consumer: bool = Field(
        True, description="Copy every <topic>.dlq.<group> topic into dead_letter."
    )
    dead_letter_topic_refresh_ms: int = Field(
        5_000, ge=500, le=600_000, description="How soon a new dead-letter topic is found (metadata refresh)."
    )
