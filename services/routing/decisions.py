"""Where a screened post goes: pure, no I/O.

The walking skeleton's decision (rule set ``builtin-0``): crisis labels go to the 24/7 crisis queue at top
priority; everything else waits in the default department's queue at the priority policy suggested. The
versioned rule engine and responder choice replace it (see the routing issue).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import PostScreenedV1

RULESET_VERSION = "builtin-0"
CRISIS_LABELS = frozenset({"self_harm", "threat", "emergency"})


@dataclass(frozen=True)
class Decision:
    department: str
    queue: str
    priority: int
    rule_id: str
    ruleset_version: str = RULESET_VERSION


def decide(*, post: PostScreenedV1, default_department: str, crisis_department: str) -> Decision:
    if CRISIS_LABELS & set(post.labels):
        return Decision(crisis_department, f"{crisis_department}.crisis", 1, "builtin.crisis")
    return Decision(default_department, f"{default_department}.default", post.priority, "builtin.default")
