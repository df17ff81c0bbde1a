"""Deterministic fault points for fault tests.

``SWITCHBOARD_FAILPOINTS=consumer.after_db_commit`` makes the process exit abruptly (as a SIGKILL would) the
first time that point is reached. ``SWITCHBOARD_FAILPOINTS=consumer.handler_raises=MARK`` raises
``FailPointError`` for every message whose raw value contains ``MARK`` (a poison message whose handler keeps
failing): in a batch handler's per-item phase (``shared.kafka.consumer.each_item``, so the item is reported
failed and the rest of its batch commits), else at the consumer's handler call (a per-event handler, the
careful pass, or a batch handler that does not use ``each_item``). Unset in production: each check is then
one dict lookup.
"""

from __future__ import annotations

import os
import sys


class FailPointError(RuntimeError):
    """Raised by an armed ``raise_if_marked`` point."""


def _parse(spec: str) -> dict[str, str]:
    points: dict[str, str] = {}
    for entry in spec.split(","):
        name, _, argument = entry.strip().partition("=")
        if name:
            points[name] = argument
    return points


_ACTIVE = _parse(os.environ.get("SWITCHBOARD_FAILPOINTS", ""))


def hit(name: str) -> None:
    if name in _ACTIVE:
        sys.stdout.write(f'{{"event": "failpoint_hit", "failpoint": "{name}"}}\n')
        sys.stdout.flush()
        os._exit(137)


def raise_if_marked(name: str, payload: bytes | None) -> None:
    """Raise if ``name`` is armed with a marker that ``payload`` contains."""
    marker = _ACTIVE.get(name)
    if marker and payload is not None and marker.encode() in payload:
        raise FailPointError(f"fail-point {name} armed for this message")
