from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.ingest.normalise import Rejected, Skipped, parse_delivery
from services.ingest.service import CanonicalPost, canonicalise
from shared.contracts.events import Platform

DATA = Path(__file__).parent.parent / "data" / "ingest"
SECRET = b"unit-test-author-ref-secret"
NOW = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def fixture_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def normalise_fixture(
    platform: str, name: str, *, account: str | None = None
) -> list[CanonicalPost | Skipped | Rejected]:
    out: list[CanonicalPost | Skipped | Rejected] = []
    for item in parse_delivery(Platform(platform), fixture_bytes(name), account=account):
        if isinstance(item, Skipped | Rejected):
            out.append(item)
        else:
            out.append(canonicalise(data=item, secret=SECRET, now=NOW, post_id="post-1"))
    return out
