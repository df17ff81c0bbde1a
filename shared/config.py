"""Settings shared by every service.

Platform-wide settings (Kafka, authentication, logging) are read from unprefixed variables such as
``KAFKA_BOOTSTRAP_SERVERS`` so that one environment configures all four services alike; each service adds its
own settings under its own prefix (``INGEST_``, ``POLICY_``, ...). This module holds no business rules.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """How to reach the Kafka-protocol cluster and how to talk to it."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of the Kafka cluster."
    )
    client_id_prefix: str = Field("switchboard", max_length=100, description="Prefix of Kafka client ids.")
    # Tansu (the embedded broker) lacks InitProducerId, so idempotence is off by default for `make run` and
    # tests and must be switched on for Apache Kafka.
    enable_idempotence: bool = Field(
        False, description="Idempotent producer. Turn on for Apache Kafka; the embedded broker lacks it."
    )
    linger_ms: int = Field(2, ge=0, le=1000, description="Producer batching delay.")
    # The embedded broker answers a waiting fetch only when this wait expires; Apache Kafka answers at once.
    fetch_max_wait_ms: int = Field(
        10, ge=1, le=10_000, description="Longest a fetch waits for data. Keep small for the embedded broker."
    )
    idle_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Fetch wait once a consumer has had no message for about a second (fewer idle fetches); "
        "back to fetch_max_wait_ms as soon as a message arrives.",
    )
    max_poll_records: int = Field(500, ge=1, le=10_000, description="Most messages handled in one batch.")
    max_poll_interval_ms: int = Field(
        300_000, ge=10_000, description="Longest gap between polls before the group evicts a consumer."
    )
    session_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        description="Consumer liveness timeout (the embedded broker joins after half of it).",
    )
    heartbeat_interval_ms: int = Field(3_000, ge=100, description="Consumer heartbeat period.")
    request_timeout_ms: int = Field(40_000, ge=1_000, description="Kafka request timeout.")
    topic_partitions: int = Field(6, ge=1, le=1000, description="Partitions of topics created at start-up.")
    topic_replication_factor: int = Field(1, ge=1, le=10, description="Replication of created topics.")
    create_topics: bool = Field(
        True, description="Create missing topics (and dead-letter topics) at start-up."
    )
    handler_max_attempts: int = Field(
        3, ge=1, le=20, description="Attempts of a failing handler before dead-lettering."
    )
    # A handler error that is not the database's or network's (those retry the whole batch with their own
    # backoff, up to 10 s) is usually deterministic: a long wait only holds up the healthy messages of the
    # batch, since the consumer waits meanwhile. Short by default; the attempts stay bounded.
    handler_retry_backoff_ms: int = Field(
        10,
        ge=0,
        le=60_000,
        description="Wait before retrying a handler that raised a non-infrastructure error, times the "
        "attempt (short: such errors are usually deterministic; database or network errors retry the whole "
        "batch with their own backoff).",
    )
    replay_from_beginning: bool = Field(
        False,
        description="Ops switch: consumers re-read topics from the earliest offset (the inbox absorbs it).",
    )
    outbox_poll_interval_ms: int = Field(
        500, ge=10, le=60_000, description="Outbox relay poll period when no commit woke it."
    )
    outbox_batch_size: int = Field(500, ge=1, le=10_000, description="Most outbox rows published per pass.")


class AuthSettings(BaseSettings):
    """Bearer-token verification. Exactly one key source should be configured in production."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    issuer: str = Field("switchboard", description="Required `iss` claim.")
    audience: str = Field("switchboard", description="Required `aud` claim.")
    jwks_url: str | None = Field(None, description="JWKS URL for RS256/EdDSA keys (production).")
    public_key_file: str | None = Field(None, description="PEM public key for RS256/EdDSA tokens.")
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "EdDSA"], description="Accepted asymmetric algorithms (JSON list)."
    )
    dev_secret: SecretStr | None = Field(
        None, description="Enables HS256 tokens signed with this secret. Development and tests only."
    )
    leeway_seconds: int = Field(30, ge=0, le=300, description="Clock skew tolerated on exp/nbf.")


class RateLimitSettings(BaseSettings):
    """Per-principal request budget (token bucket keyed by the token's subject, in each process)."""

    model_config = SettingsConfigDict(env_prefix="RATE_LIMIT_", extra="ignore")

    enabled: bool = Field(
        True, description="Answer 429 with Retry-After when a principal exceeds its budget."
    )
    requests_per_second: float = Field(
        50.0, gt=0, le=1_000_000, description="Sustained requests per second of one person (token subject)."
    )
    burst: float = Field(200.0, ge=1, le=1_000_000, description="Requests one person may make at once.")
    system_requests_per_second: float = Field(
        5_000.0,
        gt=0,
        le=1_000_000,
        description="Sustained requests per second of one agency_system principal (platform relays).",
    )
    system_burst: float = Field(
        10_000.0, ge=1, le=1_000_000, description="Requests one agency_system principal may make at once."
    )
    max_principals: int = Field(
        100_000, ge=100, le=10_000_000, description="Buckets kept in memory; the oldest is forgotten beyond."
    )


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    json_output: bool = Field(True, alias="LOG_JSON", description="JSON lines (false: console format).")


class BaseServiceSettings(BaseSettings):
    """Base of each service's settings; subclasses set ``env_prefix`` to ``<NAME>_``."""

    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter="__")

    service_name: str = Field("switchboard", description="Name in logs and client ids.")
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    database_url: str = Field("sqlite+aiosqlite:///./var/service.db", description="SQLAlchemy async URL.")
    database_schema: str | None = Field(
        None,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema holding this service's tables (one schema per service).",
    )
    migrate_on_start: bool = Field(True, description="Run Alembic upgrade head at start-up.")
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=64 * 1_048_576, description="Largest request body; larger is 413."
    )
    consumers_enabled: bool = Field(True, description="Run this service's Kafka consumers.")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    log: LogSettings = Field(default_factory=LogSettings)
