"""Inbound screening rules: pure functions over text, no I/O.

This is the walking skeleton's small built-in rule set (version ``builtin-0``): e-mail addresses and
Australian phone numbers as personal information, and crisis language. The versioned, explainable policy
pack engine replaces it (see the policy issue); the output shape stays the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["info", "low", "medium", "high", "critical"]
Risk = Literal["low", "medium", "high", "critical"]

POLICY_VERSION = "builtin-0"


@dataclass(frozen=True)
class Finding:
    rule_id: str
    label: str
    severity: Severity
    start: int
    end: int


@dataclass(frozen=True)
class Rule:
    id: str
    label: str
    severity: Severity
    pattern: re.Pattern[str]
    redact: bool


@dataclass(frozen=True)
class ScreeningResult:
    labels: list[str]
    findings: list[Finding]
    risk: Risk
    priority: int
    redacted_text: str
    policy_version: str = POLICY_VERSION
    crisis: bool = field(default=False)


RULES: tuple[Rule, ...] = (
    Rule(
        "pii.email",
        "pii:email",
        "medium",
        re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
        redact=True,
    ),
    Rule(
        "pii.phone_au",
        "pii:phone",
        "medium",
        # Mobiles 04xx xxx xxx and landlines 0[2378] xxxx xxxx, optionally +61 for the leading 0.
        re.compile(r"(?<!\d)(?:\+?61[ -]?|0)[2-478](?:[ -]?\d){8}(?!\d)"),
        redact=True,
    ),
    Rule(
        "crisis.self_harm",
        "self_harm",
        "critical",
        re.compile(
            r"\b(?:kill(?:ing)? myself|end(?:ing)? my life|suicid(?:e|al)|want to die|self[- ]harm)\b",
            re.IGNORECASE,
        ),
        redact=False,
    ),
    Rule(
        "crisis.threat",
        "threat",
        "critical",
        re.compile(r"\b(?:i(?:'ll| will) (?:kill|shoot|stab|hurt) (?:you|them|him|her))\b", re.IGNORECASE),
        redact=False,
    ),
)

CRISIS_LABELS = frozenset({"self_harm", "threat", "emergency"})
_RANK: dict[Severity, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def screen(text: str) -> ScreeningResult:
    findings: list[Finding] = []
    for rule in RULES:
        for match in rule.pattern.finditer(text):
            findings.append(Finding(rule.id, rule.label, rule.severity, match.start(), match.end()))
    findings.sort(key=lambda f: (f.start, f.end))
    labels = sorted({f.label for f in findings})
    top = max((_RANK[f.severity] for f in findings), default=0)
    crisis = bool(CRISIS_LABELS & set(labels))
    risk: Risk = "critical" if crisis else "high" if top >= 3 else "medium" if top >= 2 else "low"
    priority = {"critical": 1, "high": 2, "medium": 3, "low": 4}[risk]
    return ScreeningResult(
        labels=labels,
        findings=findings,
        risk=risk,
        priority=priority,
        redacted_text=redact(text, [f for f in findings if _redacts(f.rule_id)]),
        crisis=crisis,
    )


def _redacts(rule_id: str) -> bool:
    return any(r.id == rule_id and r.redact for r in RULES)


def redact(text: str, findings: list[Finding]) -> str:
    """Replace each finding's span with a mask naming its label, e.g. ``[pii:email]``."""
    out: list[str] = []
    cursor = 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < cursor:
            continue  # overlapping span already masked
        out.append(text[cursor : f.start])
        out.append(f"[{f.label}]")
        cursor = f.end
    out.append(text[cursor:])
    return "".join(out)
