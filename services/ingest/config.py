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
    near_duplicate_window_seconds: int = Field(
        3600,
        ge=0,
        le=30 * 24 * 3600,
        description="Same author_ref and same normalised text within this many seconds (either way) is a "
        "near-duplicate; 0 switches near-duplicate detection off.",
    )
    webhook_secrets: dict[str, dict[str, SecretStr]] = Field(
        default_factory=dict,
        description="Signing secrets per platform and account: {'facebook': {'<page id>': 'app secret'}, "
        "'instagram': {...}, 'x': {'<user id>': 'consumer secret'}}. The account '*' applies to any account "
        'of that platform. JSON in INGEST_WEBHOOK_SECRETS, e.g. {"facebook": {"*": "..."}}.',
    )
    meta_verify_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="hub.verify_token expected by the Meta subscription check, per account ('*' for any).",
    )
    group_commit_max_posts: int = Field(2000, ge=1, le=20_000, description="Posts per group transaction.")
    group_commit_linger_ms: float = Field(
        2.0, ge=0, le=100, description="How long a group waits for more requests before it commits."
    )
    group_commit_writers: int = Field(2, ge=1, le=16, description="Concurrent group transactions (PG).")
