from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class RoutingSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTING_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "routing"
    port: int = Field(8003, ge=1, le=65535)
    database_url: str = "sqlite+aiosqlite:///./var/routing.db"
    default_department: str = Field("general", max_length=100)
    crisis_department: str = Field("crisis", max_length=100)
