"""Platform payloads to canonical posts: one pure module per platform, plus the text rules they share.

``parse_delivery`` turns one webhook delivery into its items, each a validated ``PostCreate``, a ``Skipped``
(deliberately not a post) or a ``Rejected`` (a post we cannot accept, with the reason). A delivery whose
overall shape is wrong raises ``DeliveryError`` with the JSON path of the problem. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from services.ingest.normalise import bluesky, mail, mastodon, meta, reddit, webform, x, youtube
from services.ingest.normalise.base import Item, MissingAccount, Skipped
from services.ingest.schemas import PostCreate
from shared.contracts.events import Platform
from shared.errors import FieldProblem, validation_problems

__all__ = ["DeliveryError", "Rejected", "Skipped", "parse_delivery", "parse_item"]

Normaliser = Callable[..., list[Item]]

JSON_NORMALISERS: dict[Platform, Normaliser] = {
    Platform.X: x.normalise,
    Platform.FACEBOOK: meta.normalise_facebook,
    Platform.INSTAGRAM: meta.normalise_instagram,
    Platform.MASTODON: mastodon.normalise,
    Platform.BLUESKY: bluesky.normalise,
    Platform.REDDIT: reddit.normalise,
    Platform.YOUTUBE: youtube.normalise,
    Platform.WEBFORM: webform.normalise,
}


@dataclass(frozen=True)
class Rejected:
    errors: list[FieldProblem]
    external_id: str | None = None


class DeliveryError(ValueError):
    def __init__(self, message: str, errors: list[FieldProblem]) -> None:
        super().__init__(message)
        self.errors = errors


def parse_item(candidate: Any, *, prefix: str = "") -> PostCreate | Rejected:
    try:
        return PostCreate.model_validate(candidate)
    except ValidationError as exc:
        problems = validation_problems(exc.errors())
        if prefix:
            # A root error (the item is not an object) is reported at the item itself.
            problems = [
                FieldProblem(field=prefix if p.field == "body" else f"{prefix}.{p.field}", reason=p.reason)
                for p in problems
            ]
        ext = candidate.get("external_id") if isinstance(candidate, dict) else None
        return Rejected(problems, ext if isinstance(ext, str) else None)


def parse_delivery(
    platform: Platform, body: bytes, *, account: str | None
) -> list[PostCreate | Skipped | Rejected]:
    try:
        if platform is Platform.EMAIL:
            items = mail.normalise(body, account=account)
        else:
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise DeliveryError(
                    "The body is not valid JSON.", [FieldProblem(field="body", reason=str(exc))]
                ) from exc
            items = JSON_NORMALISERS[platform](payload, account=account)
    except ValidationError as exc:
        raise DeliveryError(
            f"The body is not a {platform.value} payload of a supported kind.",
            [
                FieldProblem(field=f"body.{p.field}" if p.field else "body", reason=p.reason)
                for p in validation_problems(exc.errors())
            ],
        ) from exc
    except MissingAccount as exc:
        raise DeliveryError(str(exc), [FieldProblem(field="query.account", reason="Field required")]) from exc
    except mail.EmailShapeError as exc:
        raise DeliveryError(str(exc), [FieldProblem(field="body", reason=str(exc))]) from exc
    return [item if isinstance(item, Skipped) else parse_item(item) for item in items]
