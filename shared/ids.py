"""Time-ordered identifiers (UUIDv7, RFC 9562) and keyed pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """A UUIDv7: 48-bit Unix milliseconds, version 7, 74 random bits. Sorts by creation time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def pseudonym(secret: bytes, *parts: str) -> str:
    """HMAC-SHA256 of the parts: stable for the same input and secret, not reversible without the secret."""
    message = "\x1f".join(parts).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]
