from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class RoutingSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTING_", extra="ignore", env_nested_delimiter="__")

    service_name: str = Field("routing", description="Name in logs and client ids.")
    port: int = Field(8003, ge=1, le=65535, description="HTTP port.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./var/routing.db", description="SQLAlchemy async URL of this service's database."
    )
    default_department: str = Field(
        "general", max_length=100, description="Department whose queue takes posts no rule claims."
    )
    crisis_department: str = Field(
        "crisis", max_length=100, description="Department of the 24/7 crisis queue."
    )
    offer_timeout_seconds: int = Field(
        120, ge=1, le=86_400, description="How long a responder has to accept an offer before it moves on."
    )
    drain_batch_size: int = Field(200, ge=1, le=5000, description="Waiting posts considered per queue drain.")
    timer_interval_ms: int = Field(
        1000, ge=50, le=60_000, description="How often due offer and SLA timers are fired."
    )
    timer_batch_size: int = Field(500, ge=1, le=10_000, description="Timers fired per tick at most.")
    policy_url: str = Field(
        "http://127.0.0.1:8002", description="Base URL of the policy service (reply checks)."
    )
    policy_timeout_seconds: float = Field(
        3.0, gt=0, le=60, description="Timeout of one policy check request."
    )
    policy_attempts: int = Field(
        3, ge=1, le=10, description="Attempts of a policy check before failing closed (nothing is published)."
    )
    policy_retry_backoff_ms: int = Field(
        200, ge=0, le=10_000, description="Back-off between policy attempts."
    )
