from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class IngestSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", env_nested_delimiter="__")

    service_name: str = Field("ingest", description="Name in logs and client ids.")
    port: int = Field(8001, ge=1, le=65535, description="HTTP port.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./var/ingest.db", description="SQLAlchemy async URL of this service's database."
    )
    author_ref_secret: SecretStr = Field(
        SecretStr("dev-only-author-ref-secret"),
        description="Key of the author_ref pseudonym (HMAC). Set a long random value in production.",
    )
