"""E-mail: one raw RFC 5322 message (MIME). Decodes the parts, prefers text/plain (falls back to text/html),
strips the quoted reply and the signature. Sources: RFC 5322 (Message-ID, In-Reply-To, References, Date,
From, To), RFC 2045-2047 (MIME, encoded words) via Python's ``email`` package with ``policy.default``, and
RFC 3676 section 4.3 (the "-- " signature separator)."""

from __future__ import annotations

import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from services.ingest.normalise.base import Item, drop_none, utc
from services.ingest.normalise.text import html_to_text, normalise_text

_MSGID = re.compile(r"<([^<>\s]+)>")
# "On Tue, 3 Nov 2026 at 10:00, Jane <jane@example.org> wrote:" may be wrapped over two lines by the client.
_ATTRIBUTION = re.compile(r"^On\b.{0,300}?\bwrote:\s*$", re.MULTILINE | re.DOTALL)
_OUTLOOK = re.compile(r"^(-{2,}\s*Original Message\s*-{2,}|_{10,}\s*$|From: .+\nSent: )", re.MULTILINE)
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)
_MEDIA = {"image": "image", "video": "video", "audio": "audio"}


class EmailShapeError(ValueError):
    """The bytes are not a usable e-mail (no Message-ID or sender)."""


def _first_address(value: Any) -> Address | None:
    addresses = getattr(value, "addresses", ()) if value is not None else ()
    return addresses[0] if addresses else None


def strip_reply(text: str) -> str:
    """The new part of a reply: quoted lines, the attribution line and what follows, and the signature go."""
    cut = len(text)
    for pattern in (_ATTRIBUTION, _OUTLOOK, _SIGNATURE):
        m = pattern.search(text)
        if m is not None:
            cut = min(cut, m.start())
    kept = [line for line in text[:cut].split("\n") if not line.lstrip().startswith(">")]
    return "\n".join(kept)


def body_text(msg: EmailMessage) -> tuple[str, str]:
    """``(decoded body as sent, its plain text)``: text/plain preferred, text/html converted."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "", ""
    content = part.get_content()
    if not isinstance(content, str):
        return "", ""
    content = content.replace("\r\n", "\n")
    return content, html_to_text(content) if part.get_content_subtype() == "html" else content


def normalise(payload: bytes, *, account: str | None) -> list[Item]:
    msg = BytesParser(policy=policy.default).parsebytes(payload)
    assert isinstance(msg, EmailMessage)  # noqa: S101 - policy.default always builds EmailMessage
    msgid = _MSGID.search(str(msg.get("Message-ID", "")))
    sender = _first_address(msg.get("From"))
    if msgid is None or sender is None:
        missing = "Message-ID" if msgid is None else "From"
        raise EmailShapeError(f"The message has no usable {missing} header.")
    to = _first_address(msg.get("To"))
    in_reply_to = _MSGID.search(str(msg.get("In-Reply-To", "")))
    references = _MSGID.findall(str(msg.get("References", "")))
    original, plain = body_text(msg)
    body = normalise_text(strip_reply(plain))
    subject = str(msg.get("Subject", "")).strip()
    text = f"{subject}\n\n{body}".strip() if subject else body
    media = [
        drop_none({"type": _MEDIA.get(part.get_content_maintype(), "other"), "alt_text": part.get_filename()})
        for part in msg.iter_attachments()
    ]
    address = sender.addr_spec.lower()
    return [
        drop_none(
            {
                "platform": "email",
                "external_id": msgid.group(1),
                "account": account or (to.addr_spec.lower() if to else None),
                "text": text,
                "text_original": original,
                "author": drop_none(
                    {"id": address, "handle": address, "display_name": sender.display_name or None}
                ),
                "created_at": utc(str(msg.get("Date", ""))) if msg.get("Date") else None,
                "visibility": "private",
                # The thread root is the first Message-ID in References (RFC 5322 section 3.6.4).
                "conversation_id": references[0]
                if references
                else (in_reply_to.group(1) if in_reply_to else msgid.group(1)),
                "in_reply_to": in_reply_to.group(1) if in_reply_to else None,
                "media": media[:50],
            }
        )
    ]
