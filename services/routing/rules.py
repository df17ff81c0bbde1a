"""The routing rule language: versioned, ordered, declarative, first match wins. Pure, no I/O, no eval.

A rule set is a list of rules and a default target (like a TaskRouter workflow and its default filter). A
rule's ``when`` is a tree of ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` and leaves
``{"field": F, "op": OP, "value": V}``. Rules are compiled once into closures, so evaluating a post is a
handful of set and string operations; user text is only ever compared, never executed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from shared.contracts import PostScreenedV1

RISK_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}
CRISIS_LABELS = frozenset({"self_harm", "threat", "emergency"})
MAX_RULES = 500
MAX_DEPTH = 6
MAX_LIST = 200
MAX_STRING = 200
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_HASHTAG = re.compile(r"#(\w{1,100})")

# field -> kind. "set" fields are compared as sets of strings; "ordered" fields support gte/lte.
FIELDS: dict[str, str] = {
    "platform": "str",
    "account": "str",
    "visibility": "str",
    "language": "str",
    "author_ref": "str",
    "labels": "set",
    "hashtags": "set",
    "text": "text",
    "risk": "risk",
    "priority": "int",
}
OPS: dict[str, frozenset[str]] = {
    "str": frozenset({"eq", "ne", "in", "not_in"}),
    "set": frozenset({"contains_any", "contains_all", "contains_none"}),
    "text": frozenset({"contains_any", "contains_none"}),
    "risk": frozenset({"eq", "in", "gte", "lte"}),
    "int": frozenset({"eq", "in", "gte", "lte"}),
}


@dataclass(frozen=True)
class PostFacts:
    """What rules can see of a post. Built once per post; lower-cased where matching is case-blind."""

    platform: str
    account: str
    visibility: str
    language: str | None
    author_ref: str
    labels: frozenset[str]
    hashtags: frozenset[str]
    text: str  # lower-cased
    risk: str
    priority: int
    risk_rank: int = 0

    @classmethod
    def from_screened(cls, post: PostScreenedV1) -> PostFacts:
        text = post.redacted_text.lower()
        language = next((lab.split(":", 1)[1] for lab in post.labels if lab.startswith("lang:")), None)
        return cls(
            platform=str(post.platform),
            account=post.account.lower(),
            visibility=post.visibility,
            language=language,
            author_ref=post.author_ref,
            labels=frozenset(post.labels),
            # Tokenising every post costs more than the whole rule evaluation: words are found on demand.
            hashtags=frozenset(_HASHTAG.findall(text)) if "#" in text else frozenset(),
            text=text,
            risk=post.risk,
            priority=post.priority,
            risk_rank=RISK_ORDER[post.risk],
        )


@dataclass(frozen=True)
class Target:
    department: str
    queue: str
    priority: int | None  # None: keep the priority screening suggested
    required_skills: frozenset[str]
    sla_policy: str | None


@dataclass(frozen=True)
class Match:
    rule_id: str
    ruleset_version: str
    target: Target
    priority: int

    def explain(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "ruleset_version": self.ruleset_version,
            "department": self.target.department,
            "queue": self.target.queue,
            "priority": self.priority,
            "required_skills": sorted(self.target.required_skills),
            "sla_policy": self.target.sla_policy,
        }


Predicate = Callable[[PostFacts], bool]


@dataclass(frozen=True)
class CompiledRule:
    id: str
    predicate: Predicate
    target: Target


@dataclass(frozen=True)
class RuleSet:
    version: str
    rules: tuple[CompiledRule, ...]
    default: Target
    crisis: Target

    def evaluate(self, facts: PostFacts) -> Match:
        """Crisis labels first (24/7, top priority, no rule can route them elsewhere), then first match."""
        if facts.labels & CRISIS_LABELS:
            return Match("builtin.crisis", self.version, self.crisis, 1)
        for rule in self.rules:
            if rule.predicate(facts):
                return Match(rule.id, self.version, rule.target, rule.target.priority or facts.priority)
        return Match("default", self.version, self.default, self.default.priority or facts.priority)


class RuleError(ValueError):
    """Every fault found in a rule set: (rule id or index, JSON path, reason)."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        super().__init__("; ".join(f"{r} {f}: {m}" for r, f, m in problems))
        self.problems = problems


def _strings(value: Any, path: str, problems: list[str]) -> list[str] | None:
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        problems.append(f"{path}: must be a non-empty list of at most {MAX_LIST} strings")
        return None
    if not all(isinstance(v, str) and 0 < len(v) <= MAX_STRING for v in value):
        problems.append(f"{path}: every item must be a string of 1..{MAX_STRING} characters")
        return None
    return list(value)


def _compile_leaf(node: Mapping[str, Any], path: str, errs: list[tuple[str, str]]) -> Predicate | None:
    extra = set(node) - {"field", "op", "value"}
    if extra:
        errs.append((f"{path}.{sorted(extra)[0]}", "unknown key; a condition has field, op and value"))
        return None
    name, op, value = node.get("field"), node.get("op"), node.get("value")
    if name not in FIELDS:
        errs.append((f"{path}.field", f"unknown field {str(name)[:50]!r}; use one of {', '.join(FIELDS)}"))
        return None
    kind = FIELDS[name]
    if op not in OPS[kind]:
        errs.append(
            (f"{path}.op", f"operator {str(op)[:30]!r} does not apply to {name}; use {sorted(OPS[kind])}")
        )
        return None
    vpath = f"{path}.value"
    problems: list[str] = []
    pred: Predicate | None = None
    if kind == "str":
        if op in ("eq", "ne"):
            if not isinstance(value, str) or len(value) > MAX_STRING:
                problems.append(f"{vpath}: must be a string of at most {MAX_STRING} characters")
            else:
                v = value.lower() if name == "account" else value
                pred = _str_eq(name, v, op == "ne")
        else:
            vals = _strings(value, vpath, problems)
            if vals is not None:
                vs = frozenset(v.lower() if name == "account" else v for v in vals)
                pred = _str_in(name, vs, op == "not_in")
    elif kind in ("set", "text"):
        vals = _strings(value, vpath, problems)
        if vals is not None:
            vs = frozenset(
                v.lower().lstrip("#") if name == "hashtags" else v.lower() if kind == "text" else v
                for v in vals
            )
            pred = _text_pred(vs, op) if kind == "text" else _set_pred(name, vs, op)
    elif kind == "risk":
        if op == "in":
            vals = _strings(value, vpath, problems)
            if vals is not None and not set(vals) <= set(RISK_ORDER):
                problems.append(f"{vpath}: risks are {', '.join(RISK_ORDER)}")
            elif vals is not None:
                pred = _str_in("risk", frozenset(vals), False)
        elif value not in RISK_ORDER:
            problems.append(f"{vpath}: must be one of {', '.join(RISK_ORDER)}")
        else:
            pred = _ordered("risk_rank", RISK_ORDER[value], op)
    else:  # int: priority
        values = value if op == "in" and isinstance(value, list) and 0 < len(value) <= 4 else [value]
        ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4]
        if len(ints) != len(values) or (op == "in") != isinstance(value, list):
            problems.append(f"{vpath}: priorities are integers 1..4 (a list of them for 'in')")
        elif op == "in":
            pred = _int_in(frozenset(ints))
        else:
            pred = _ordered("priority", ints[0], op)
    for p in problems:
        where, _, why = p.partition(": ")
        errs.append((where, why))
    return pred


# Predicates are the hot path (50 rules x every post): attrgetter and plain loops, no per-call generators.


def _str_eq(name: str, v: str, negate: bool) -> Predicate:
    get = attrgetter(name)
    if negate:
        return lambda f: get(f) != v
    return lambda f: get(f) == v


def _str_in(name: str, vs: frozenset[str], negate: bool) -> Predicate:
    get = attrgetter(name)
    if negate:
        return lambda f: get(f) not in vs
    return lambda f: get(f) in vs


def _int_in(vs: frozenset[int]) -> Predicate:
    return lambda f: f.priority in vs


def _set_pred(name: str, vs: frozenset[str], op: str) -> Predicate:
    get = attrgetter(name)
    if op == "contains_any":
        return lambda f: not vs.isdisjoint(get(f))
    if op == "contains_all":
        return lambda f: vs <= get(f)
    return lambda f: vs.isdisjoint(get(f))


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def has_word(text: str, word: str) -> bool:
    """``word`` occurs in ``text`` with no letter, digit or underscore on either side."""
    n, end = len(word), len(text)
    i = text.find(word)
    while i != -1:
        j = i + n
        if (i == 0 or not _is_word_char(text[i - 1])) and (j == end or not _is_word_char(text[j])):
            return True
        i = text.find(word, i + 1)
    return False


def _text_pred(keywords: frozenset[str], op: str) -> Predicate:
    # Keywords match whole words or phrases ("bus" does not match "business"); a substring search in C
    # followed by a boundary check beats tokenising every post.
    terms = tuple(sorted(keywords))

    def any_hit(f: PostFacts) -> bool:
        text = f.text
        for t in terms:  # noqa: SIM110 - a loop is measurably faster than any() over a generator here
            if t in text and has_word(text, t):
                return True
        return False

    if op == "contains_any":
        return any_hit
    return lambda f: not any_hit(f)


def _ordered(name: str, v: int, op: str) -> Predicate:
    get = attrgetter(name)
    if op == "eq":
        return lambda f: get(f) == v
    if op == "gte":
        return lambda f: get(f) >= v
    return lambda f: get(f) <= v


def _all(ps: tuple[Predicate, ...]) -> Predicate:
    def check(f: PostFacts) -> bool:
        for p in ps:  # noqa: SIM110 - hot path, see above
            if not p(f):
                return False
        return True

    return check


def _any(ps: tuple[Predicate, ...]) -> Predicate:
    def check(f: PostFacts) -> bool:
        for p in ps:  # noqa: SIM110 - hot path, see above
            if p(f):
                return True
        return False

    return check


def _compile(node: Any, path: str, depth: int, errs: list[tuple[str, str]]) -> Predicate | None:
    if depth > MAX_DEPTH:
        errs.append((path, f"conditions nest at most {MAX_DEPTH} deep"))
        return None
    if not isinstance(node, dict):
        errs.append((path, "a condition is an object"))
        return None
    keys = set(node)
    if keys in ({"all"}, {"any"}):
        (kw,) = keys
        items = node[kw]
        if not isinstance(items, list) or not items or len(items) > MAX_LIST:
            errs.append((f"{path}.{kw}", f"must be a non-empty list of at most {MAX_LIST} conditions"))
            return None
        preds = [_compile(c, f"{path}.{kw}[{i}]", depth + 1, errs) for i, c in enumerate(items)]
        if any(p is None for p in preds):
            return None
        ps = tuple(p for p in preds if p is not None)
        return _all(ps) if kw == "all" else _any(ps)
    if keys == {"not"}:
        inner = _compile(node["not"], f"{path}.not", depth + 1, errs)
        return None if inner is None else (lambda f: not inner(f))
    if "field" in keys or "op" in keys:
        return _compile_leaf(node, path, errs)
    errs.append((path, "a condition is {all: [...]}, {any: [...]}, {not: {...}} or {field, op, value}"))
    return None


def _target(raw: Any, path: str, errs: list[tuple[str, str]]) -> Target | None:
    if not isinstance(raw, dict):
        errs.append((path, "a target is an object with department and optional queue, priority, skills"))
        return None
    allowed = {"department", "queue", "priority", "required_skills", "sla_policy"}
    for k in sorted(set(raw) - allowed):
        errs.append((f"{path}.{k}", f"unknown key; a target has {', '.join(sorted(allowed))}"))
    dept = raw.get("department")
    if not isinstance(dept, str) or not _ID.match(dept):
        errs.append((f"{path}.department", "must be a department id (lower-case letters, digits, . _ -)"))
        return None
    queue = raw.get("queue", f"{dept}.default")
    if not isinstance(queue, str) or not _ID.match(queue):
        errs.append((f"{path}.queue", "must be a queue id (lower-case letters, digits, . _ -)"))
        return None
    priority = raw.get("priority")
    if priority is not None and (
        not isinstance(priority, int) or isinstance(priority, bool) or not 1 <= priority <= 4
    ):
        errs.append((f"{path}.priority", "must be an integer 1..4 (1 is the most urgent)"))
        return None
    skills_raw = raw.get("required_skills", [])
    if (
        not isinstance(skills_raw, list)
        or len(skills_raw) > 50
        or not all(isinstance(s, str) and 0 < len(s) <= 100 for s in skills_raw)
    ):
        errs.append((f"{path}.required_skills", "must be a list of at most 50 skill names"))
        return None
    sla = raw.get("sla_policy")
    if sla is not None and (not isinstance(sla, str) or not _ID.match(sla)):
        errs.append((f"{path}.sla_policy", "must be an SLA policy name"))
        return None
    return Target(dept, queue, priority, frozenset(skills_raw), sla)


def compile_ruleset(
    *, version: str, rules: Sequence[Mapping[str, Any]], default: Mapping[str, Any], crisis: Target
) -> RuleSet:
    """Validate and compile; raises RuleError naming each faulty rule and field."""
    problems: list[tuple[str, str, str]] = []
    if len(rules) > MAX_RULES:
        problems.append(("rules", "rules", f"at most {MAX_RULES} rules"))
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for i, raw in enumerate(rules[:MAX_RULES]):
        errs: list[tuple[str, str]] = []
        rid = raw.get("id") if isinstance(raw, Mapping) else None
        label = rid if isinstance(rid, str) and _ID.match(rid) else f"rules[{i}]"
        if not isinstance(raw, Mapping):
            problems.append((label, f"rules[{i}]", "a rule is an object with id, when and target"))
            continue
        if label == f"rules[{i}]":
            errs.append((f"rules[{i}].id", "must be an id (lower-case letters, digits, . _ -)"))
        elif rid in seen:
            errs.append((f"rules[{i}].id", f"duplicate rule id {rid!r}"))
        seen.add(str(rid))
        for k in sorted(set(raw) - {"id", "when", "target", "description"}):
            errs.append((f"rules[{i}].{k}", "unknown key; a rule has id, when, target and description"))
        if "when" not in raw:
            errs.append((f"rules[{i}].when", "is required (the default target catches everything else)"))
        pred = _compile(raw.get("when"), f"rules[{i}].when", 1, errs) if "when" in raw else None
        target = _target(raw.get("target"), f"rules[{i}].target", errs)
        problems.extend((label, f, m) for f, m in errs)
        if not errs and pred is not None and target is not None:
            compiled.append(CompiledRule(str(rid), pred, target))
    derrs: list[tuple[str, str]] = []
    default_target = _target(default, "default", derrs)
    problems.extend(("default", f, m) for f, m in derrs)
    if problems or default_target is None:
        raise RuleError(problems)
    return RuleSet(version, tuple(compiled), default_target, crisis)
