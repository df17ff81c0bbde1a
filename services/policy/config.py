from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class PolicySettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICY_", extra="ignore", env_nested_delimiter="__")

    service_name: str = Field("policy", description="Name in logs and client ids.")
    port: int = Field(8002, ge=1, le=65535, description="HTTP port.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./var/policy.db", description="SQLAlchemy async URL of this service's database."
    )
