from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class MetricsSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore", env_nested_delimiter="__")

    service_name: str = Field("metrics", description="Name in logs and client ids.")
    port: int = Field(8004, ge=1, le=65535, description="HTTP port.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./var/metrics.db", description="SQLAlchemy async URL of this service's database."
    )
