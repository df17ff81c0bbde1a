"""What every platform normaliser returns, and the small helpers they share. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

#: Candidate canonical posts as plain dicts: each is validated on its own (``PostCreate``) so that one bad
#: item in a delivery is rejected alone.
Candidate = dict[str, Any]


@dataclass(frozen=True)
class Skipped:
    """An item of a delivery that is deliberately not a post (a like, an edit, the agency's own post...)."""

    reason: str
    external_id: str | None = None


Item = Candidate | Skipped


class PlatformModel(BaseModel):
    """Platforms add fields over time: ignore what we do not map, but insist on what we do."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class MissingAccount(ValueError):
    """The payload does not say which agency account was addressed and no ``account`` was given."""


def require_account(account: str | None, platform: str) -> str:
    if not account:
        raise MissingAccount(
            f"A {platform} payload does not name the agency account: "
            "pass it as the `account` query parameter."
        )
    return account


def drop_none(d: dict[str, Any]) -> Candidate:
    return {k: v for k, v in d.items() if v is not None}


def utc(value: Any) -> Any:
    """ISO 8601 UTC for any platform timestamp; an unparseable value is passed through unchanged so that the
    item alone is rejected by validation (with the field named) instead of the whole delivery."""
    from services.ingest.normalise.text import to_utc

    try:
        return to_utc(value).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return value
