from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class PolicySettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICY_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "policy"
    port: int = Field(8002, ge=1, le=65535)
    database_url: str = "sqlite+aiosqlite:///./var/policy.db"
