"""Webform: Switchboard's own documented JSON for contact forms (docs/ingest.md, "Webform"). Unlike the
platforms' payloads this schema is ours, so unknown fields are rejected."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.ingest.normalise.base import Item, drop_none


class WebformSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    form_id: str = Field(min_length=1, max_length=200, description="The form, which is the agency account.")
    submission_id: str = Field(min_length=1, max_length=200, description="Unique per submission.")
    submitted_at: AwareDatetime
    message: str = Field(min_length=1, max_length=40_000)
    subject: str | None = Field(None, max_length=500)
    name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    page_url: str | None = Field(None, max_length=2048, description="The page the form was sent from.")
    in_reply_to: str | None = Field(None, max_length=200, description="A previous submission_id, if any.")


class WebformDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    submissions: list[WebformSubmission] = Field(min_length=1, max_length=500)


def normalise(payload: Any, *, account: str | None) -> list[Item]:
    if isinstance(payload, dict) and "submissions" in payload:
        subs = WebformDelivery.model_validate(payload).submissions
    else:
        subs = [WebformSubmission.model_validate(payload)]
    out: list[Item] = []
    for s in subs:
        # Without an e-mail address the submitter is unknown: each submission is its own author, so that
        # anonymous people are never grouped together as near-duplicates of each other.
        author_id = str(s.email).lower() if s.email else f"anonymous:{s.submission_id}"
        text = f"{s.subject}\n\n{s.message}" if s.subject else s.message
        out.append(
            drop_none(
                {
                    "platform": "webform",
                    "external_id": s.submission_id,
                    "account": account or s.form_id,
                    "text": text,
                    "author": drop_none(
                        {
                            "id": author_id,
                            "handle": str(s.email).lower() if s.email else None,
                            "display_name": s.name,
                        }
                    ),
                    "created_at": s.submitted_at.isoformat(),
                    "visibility": "private",
                    "conversation_id": s.in_reply_to or s.submission_id,
                    "in_reply_to": s.in_reply_to,
                    "url": s.page_url,
                }
            )
        )
    return out
