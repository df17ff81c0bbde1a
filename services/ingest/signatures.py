"""Webhook signatures of the platforms that sign (pure functions, no I/O).

- Meta (Facebook, Instagram): ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed with the
  app secret>``; subscription check ``GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`` answered
  with the challenge.
- X (Account Activity): ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256 of the raw body, keyed
  with the consumer secret>``; CRC ``GET ?crc_token=..`` answered with
  ``{"response_token": "sha256=<base64 HMAC-SHA256 of crc_token>"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

SIGNED_PLATFORMS = frozenset({"facebook", "instagram", "x"})
SIGNATURE_HEADERS = {
    "facebook": "x-hub-signature-256",
    "instagram": "x-hub-signature-256",
    "x": "x-twitter-webhooks-signature",
}
ANY_ACCOUNT = "*"


def meta_signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def x_signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def x_crc_response(secret: bytes, crc_token: str) -> str:
    return x_signature(secret, crc_token.encode())


def expected_signature(platform: str, secret: bytes, body: bytes) -> str:
    return x_signature(secret, body) if platform == "x" else meta_signature(secret, body)


def signing_accounts(platform: str, body: bytes, query_account: str | None) -> set[str]:
    """The accounts a signed delivery is for: those the body names (Meta ``entry[].id``, X ``for_user_id``)
    and the ``account`` query parameter. Each must have a secret and the signature must match each.

    Read leniently: a body we cannot read here names no account, and is then checked against the query's
    account or the platform-wide secret; its shape is validated later, after the signature passed.
    """
    accounts: set[str] = {query_account} if query_account else set()
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return accounts
    if isinstance(payload, dict):
        if platform == "x" and isinstance(payload.get("for_user_id"), str):
            accounts.add(payload["for_user_id"])
        if platform in ("facebook", "instagram") and isinstance(payload.get("entry"), list):
            accounts.update(str(e["id"]) for e in payload["entry"] if isinstance(e, dict) and "id" in e)
    return accounts


def secret_for(secrets: Mapping[str, bytes], account: str) -> bytes | None:
    return secrets.get(account) or secrets.get(ANY_ACCOUNT)


def verify(
    *, platform: str, body: bytes, header: str | None, secrets: Mapping[str, bytes], accounts: set[str]
) -> bool:
    """True only when a signature is present and matches the secret of every account the delivery is for."""
    if not header:
        return False
    for account in accounts or {ANY_ACCOUNT}:
        secret = secret_for(secrets, account)
        if secret is None:
            return False
        if not hmac.compare_digest(expected_signature(platform, secret, body), header.strip()):
            return False
    return True
