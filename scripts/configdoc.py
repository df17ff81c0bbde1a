"""Render docs/configuration.md from the settings classes, so the documented settings are the real ones.

``make docs`` (``python -m scripts.configdoc``) rewrites the file; ``tests/test_docs.py`` fails when
it is out of date.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from services.ingest.config import IngestSettings
from services.metrics.config import MetricsSettings
from services.policy.config import PolicySettings
from services.routing.config import RoutingSettings
from shared.config import AuthSettings, KafkaSettings, LogSettings, RateLimitSettings

TARGET = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
NESTED = {"kafka", "auth", "log", "rate_limit"}


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if value is None:
        return ""
    if hasattr(value, "get_secret_value"):
        return "(dev-only value; set it)"
    return f"`{value}`"


def _rows(cls: type[BaseSettings]) -> list[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    rows = []
    for name, field in cls.model_fields.items():
        if name in NESTED:
            continue
        env = field.alias or f"{prefix}{name}".upper()
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{env}` | {_default(field)} | {description} |")
    return rows


def render() -> str:
    parts = [
        "# Configuration",
        "",
        "Every setting is an environment variable. Platform-wide settings have no service prefix, so one",
        "environment configures all four services alike; each service's own settings carry its prefix.",
        "This file is generated from the settings classes by `make docs`;",
        "`tests/test_docs.py` fails when it is out of date.",
        "",
    ]
    sections: list[tuple[str, type[BaseSettings]]] = [
        ("Kafka (all services)", KafkaSettings),
        ("Authentication (all services)", AuthSettings),
        ("Logging (all services)", LogSettings),
        ("Rate limit (all services)", RateLimitSettings),
        ("ingest", IngestSettings),
        ("policy", PolicySettings),
        ("routing", RoutingSettings),
        ("metrics", MetricsSettings),
    ]
    for title, cls in sections:
        parts += [f"## {title}", "", "| Variable | Default | Meaning |", "|---|---|---|", *_rows(cls), ""]
    parts += [
        "## Fault injection (tests only)",
        "",
        "| Variable | Meaning |",
        "|---|---|",
        "| `SWITCHBOARD_FAILPOINTS` | Comma-separated crash points (`consumer.after_db_commit`, "
        "`outbox.after_send`): the process exits abruptly the first time one is reached. |",
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
