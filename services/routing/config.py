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
