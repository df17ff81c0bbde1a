"""Deterministic crash points for fault tests.

``SWITCHBOARD_FAILPOINTS=consumer.after_db_commit`` makes the process exit abruptly (as a SIGKILL would) the
first time that point is reached. Unset in production: ``hit`` is then one dict lookup.
"""

from __future__ import annotations

import os
import sys

_ACTIVE = frozenset(p.strip() for p in os.environ.get("SWITCHBOARD_FAILPOINTS", "").split(",") if p.strip())


def hit(name: str) -> None:
    if name in _ACTIVE:
        sys.stdout.write(f'{{"event": "failpoint_hit", "failpoint": "{name}"}}\n')
        sys.stdout.flush()
        os._exit(137)
