"""The policy engine as it was before the speed work of issue 4 item 7 (commit 9b3fbff), kept unchanged as
the oracle of the equivalence test: the fast engine must give exactly its findings, redactions and risk.
Do not optimise or fix this copy; a deliberate change of rule semantics changes both.

Its docstring: Evaluating a compiled policy pack against one text: pure, no I/O, no logging of
content.

``compile_pack`` turns a validated ``PolicyPack`` into detectors with precompiled regular expressions and
cheap gates (a digit, an ``@``, a dot), so a post without digits never runs the identifier or phone
patterns. ``evaluate`` runs every rule that applies to the direction and the active modes; each rule is
isolated, so one failing rule is reported in ``failed_rules`` and never stops the crisis rules (which run
first). ``screen`` and ``check`` turn findings into the inbound screening and the outbound decision.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from services.policy import checksums
from services.policy.pack import (
    SEVERITY_RANK,
    Action,
    AuthorisationDetector,
    DateOfBirthDetector,
    Direction,
    EmailDetector,
    EmbargoDetector,
    GatedPattern,
    IdentifierDetector,
    LengthDetector,
    LexiconDetector,
    LinkDomainsDetector,
    MediaAltTextDetector,
    MediaDocumentDetector,
    PhoneDetector,
    PolicyPack,
    RegexDetector,
    RepetitionDetector,
    RequiredElementDetector,
    Rule,
    ScheduleWindowDetector,
    Severity,
    StreetAddressDetector,
)

Risk = Literal["low", "medium", "high", "critical"]
Decision = Literal["allow", "review", "block"]

CRISIS_LABELS = frozenset({"self_harm", "threat", "emergency"})
ACTION_RANK: dict[str, int] = {"allow": 0, "warn": 1, "redact": 2, "review": 3, "escalate": 4, "block": 5}
# The outbound decision is the strongest finding: allow/warn publish, anything needing a person is review.
DECISION_OF: dict[str, Decision] = {
    "allow": "allow",
    "warn": "allow",
    "redact": "review",
    "review": "review",
    "escalate": "review",
    "block": "block",
}


@dataclass(frozen=True)
class MediaItem:
    type: Literal["image", "gif", "video", "audio"]
    alt_text: str | None = None
    captions: bool = False
    decorative: bool = False


@dataclass(frozen=True)
class Context:
    """What a rule may see besides the text; ``now`` is passed in so schedule rules test without clocks."""

    direction: Direction
    now: datetime
    platform: str | None = None
    visibility: Literal["public", "private"] = "public"
    media: Sequence[MediaItem] = ()
    reply_to_labels: frozenset[str] = frozenset()
    active_modes: frozenset[str] = frozenset()
    duplicate: bool = False  # inbound: ingest flagged the post as a near-duplicate by the same author
    department: str | None = None  # outbound: the department the reply is for
    authorised_departments: frozenset[str] | None = None  # the checker's departments; None = not limited


@dataclass(frozen=True)
class Hit:
    """Where a detector matched (no span for whole-message rules) and, optionally, a detail for the message.
    A detail never contains the matched value: findings are logged and shown, the value must not be."""

    start: int | None = None
    end: int | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Finding:
    rule_id: str
    label: str
    severity: Severity
    action: Action
    start: int | None
    end: int | None
    message: str
    suggestion: str | None
    source: str

    def as_dict(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "label": self.label,
            "severity": self.severity,
            "action": self.action,
            "start": self.start,
            "end": self.end,
            "message": self.message,
            "suggestion": self.suggestion,
            "source": self.source,
        }


@dataclass(frozen=True)
class Evaluation:
    findings: list[Finding]
    failed_rules: list[str] = field(default_factory=list)


class _Text:
    """The text plus features computed once and shared by every detector: its lowercase words (for the
    rules' speed gates) and whether it has a digit, an @ or a dot at all."""

    __slots__ = (
        "_windows",
        "disguise_chars",
        "has_at",
        "has_digit",
        "many_digits",
        "maybe_link",
        "raw",
        "words",
    )

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self._windows: list[tuple[int, int]] | None = None
        # bytes.translate runs in C: non-ASCII becomes "?" and then, like all punctuation, a separator.
        ascii_bytes = raw.lower().encode("ascii", "replace")
        self.words = frozenset(ascii_bytes.translate(_SPLIT_BYTES).decode("ascii").split())
        digit_count = len(ascii_bytes.translate(None, _NOT_DIGIT_BYTES))
        self.has_digit = digit_count > 0
        # A number window needs a run of 6 digits; non-ASCII text may hold other \d digits, so it always may.
        self.many_digits = digit_count >= 6 or not raw.isascii()
        self.disguise_chars = bool(ascii_bytes.translate(None, _NOT_DISGUISE_BYTES))
        self.has_at = "@" in raw
        # Every link the URL pattern finds has "/" (scheme or path) or starts with www.
        self.maybe_link = "/" in raw or "www" in self.words

    @property
    def number_windows(self) -> list[tuple[int, int]]:
        """Where an identifier or phone number can be: around each run of at least 6 digits (separated by
        at most two of space, dash, slash, parentheses), widened by 4 characters each side so the
        candidate patterns' look-arounds and a CRN's trailing letter still see their context."""
        if self._windows is None:
            windows: list[tuple[int, int]] = []
            if self.has_digit:
                for m in _RUN.finditer(self.raw):
                    if sum(c.isdigit() for c in m.group()) < 6:
                        continue
                    start, end = max(0, m.start() - 4), min(len(self.raw), m.end() + 4)
                    if windows and start <= windows[-1][1]:
                        windows[-1] = (windows[-1][0], end)
                    else:
                        windows.append((start, end))
            self._windows = windows
        return self._windows


_DIGIT = re.compile(r"\d")
_RUN = re.compile(r"\d(?:[ \-/()]{0,2}\d)*")
# Everything but ASCII letters and digits separates words.
_SPLIT_BYTES = bytes(c if c < 128 and chr(c).isalnum() else 32 for c in range(256))
_NOT_DIGIT_BYTES = bytes(c for c in range(256) if not (48 <= c <= 57))
_NOT_DISGUISE_BYTES = bytes(c for c in range(256) if chr(c) not in "*@$!|013457")
_TOKEN = re.compile(r"[a-z0-9]+")


def gate_tokens(phrase: str) -> str | None:
    """The first word of ``phrase`` as the gate sees it (``don't`` -> ``don``)."""
    m = _TOKEN.search(phrase.lower())
    return m.group() if m else None


_SEPARATORS = re.compile(r"[ \-/]")

Find = Callable[[_Text, Context], list[Hit]]


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    find: Find
    inbound: bool
    outbound: bool
    crisis: bool
    identifier: bool
    redact_mask: str
    gate: frozenset[str] | None = None
    switched: bool = False  # the rule depends on caretaker or crisis mode


# The pseudo-word of the identifier and phone rules' gate: the text has at least 6 digits (never a real word,
# since words are letters and digits only).
DIGITS = "#digits"


@dataclass(frozen=True)
class _Plan:
    """Which rules of one direction can match a text, found with one set intersection instead of a gate test
    per rule: ``always`` (rules without a gate) plus, for each gate word the text has, the rules it opens.
    Indices keep the rules' order (crisis rules first)."""

    rules: tuple[CompiledRule, ...]
    always: tuple[int, ...]
    by_word: dict[str, tuple[int, ...]]
    words: frozenset[str]

    @classmethod
    def of(cls, rules: tuple[CompiledRule, ...]) -> _Plan:
        by_word: dict[str, list[int]] = {}
        for i, cr in enumerate(rules):
            for w in cr.gate or ():
                by_word.setdefault(w, []).append(i)
        always = tuple(i for i, cr in enumerate(rules) if cr.gate is None)
        return cls(rules, always, {w: tuple(v) for w, v in by_word.items()}, frozenset(by_word))

    def candidates(self, text: _Text) -> Sequence[int]:
        opened = self.words.intersection(text.words)
        digits = text.many_digits and DIGITS in self.by_word
        if not opened and not digits:
            return self.always
        idx = set(self.always)
        for w in opened:
            idx.update(self.by_word[w])
        if digits:
            idx.update(self.by_word[DIGITS])
        return sorted(idx)


@dataclass(frozen=True)
class CompiledPack:
    pack: PolicyPack
    rules: tuple[CompiledRule, ...]
    inbound: tuple[CompiledRule, ...] = ()
    outbound: tuple[CompiledRule, ...] = ()
    masks: dict[str, str] = field(default_factory=dict)
    inbound_plan: _Plan = field(init=False, repr=False, compare=False)
    outbound_plan: _Plan = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived from the rules (also when a copy replaces them), so a plan never disagrees with its rules.
        object.__setattr__(self, "inbound_plan", _Plan.of(self.inbound))
        object.__setattr__(self, "outbound_plan", _Plan.of(self.outbound))

    @property
    def policy_version(self) -> str:
        return self.pack.policy_version


# --- detectors -------------------------------------------------------------------------------------------


def _keyword_regex(keywords: Sequence[str]) -> re.Pattern[str]:
    alternation = "|".join(re.escape(k.lower()) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alternation})(?![a-z0-9])", re.IGNORECASE)


def _near(keywords: re.Pattern[str], text: _Text, start: int, end: int, window: int) -> bool:
    return keywords.search(text.raw, max(0, start - window), min(len(text.raw), end + window)) is not None


def _regex(d: RegexDetector) -> Find:
    flags = re.IGNORECASE if d.ignore_case else 0
    plain = [p for p in d.patterns if isinstance(p, str)]
    pattern = re.compile("|".join(f"(?:{p})" for p in plain), flags) if plain else None
    gated = [
        (re.compile(p.pattern, flags), frozenset(p.gate)) for p in d.patterns if isinstance(p, GatedPattern)
    ]
    keywords = _keyword_regex(d.keywords) if d.keywords else None
    exclude = re.compile("|".join(f"(?:{p})" for p in d.exclude), re.IGNORECASE) if d.exclude else None

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        matches = list(pattern.finditer(text.raw)) if pattern is not None else []
        for rx, gate in gated:
            if not gate.isdisjoint(text.words):
                matches.extend(rx.finditer(text.raw))
        if len(matches) > 1:
            matches = sorted({(m.start(), m.end()): m for m in matches}.values(), key=lambda m: m.start())
        hits = []
        for m in matches:
            if m.end() == m.start():
                continue
            if keywords is not None and not _near(keywords, text, m.start(), m.end(), d.window):
                continue
            if exclude is not None and _excluded(exclude, text.raw, m.start(), m.end()):
                continue
            # A named group "span" marks the part to report and redact (a name, not its "case officer").
            if "span" in m.re.groupindex and m.start("span") >= 0:
                hits.append(Hit(m.start("span"), m.end("span")))
            else:
                hits.append(Hit(m.start(), m.end()))
        return hits

    return find


def _excluded(exclude: re.Pattern[str], raw: str, start: int, end: int) -> bool:
    # A figure of speech excludes a match when the two overlap; look a sentence's width either side.
    for m in exclude.finditer(raw, max(0, start - 80), min(len(raw), end + 80)):
        if m.start() < end and start < m.end():
            return True
    return False


# Candidates are not part of a longer digit run, including one written in groups ("51 824 753 556").
_NOT_BEFORE = r"(?<![\dA-Za-z])(?<!\d[ -])(?<![A-Za-z]-)"
_NOT_AFTER = r"(?![ -]?\d)(?![A-Za-z0-9])"
_IDENTIFIER_CANDIDATES: dict[str, re.Pattern[str]] = {
    "tfn": re.compile(rf"{_NOT_BEFORE}(?:\d{{3}}[ -]?\d{{3}}[ -]?\d{{2,3}}|\d{{4}}[ -]?\d{{4}}){_NOT_AFTER}"),
    "medicare": re.compile(rf"{_NOT_BEFORE}[2-6]\d{{3}}[ -]?\d{{5}}[ -]?[1-9](?:[ /-]?[1-9])?{_NOT_AFTER}"),
    "abn": re.compile(rf"{_NOT_BEFORE}\d{{2}}[ -]?\d{{3}}[ -]?\d{{3}}[ -]?\d{{3}}{_NOT_AFTER}"),
    "acn": re.compile(rf"{_NOT_BEFORE}\d{{3}}[ -]?\d{{3}}[ -]?\d{{3}}{_NOT_AFTER}"),
    "card": re.compile(rf"{_NOT_BEFORE}\d(?:[ -]?\d){{12,18}}{_NOT_AFTER}"),
    "crn": re.compile(r"(?<![A-Za-z0-9])(?<!\d[ -])\d{3}[ -]?\d{3}[ -]?\d{3}[ -]?[A-Za-z](?![A-Za-z0-9])"),
}
# How people write each identifier when they copy it from a card or letter: digits in its usual groups with
# one kind of separator. "2024-118392" is a reference code, not a Medicare number written 4-5-1.
_GROUPINGS: dict[str, re.Pattern[str]] = {
    "tfn": re.compile(r"^\d{3}([ -])\d{3}\1\d{3}$|^\d{4}[ -]\d{4}$|^\d{3}([ -])\d{3}\2\d{2}$"),
    "medicare": re.compile(r"^\d{4}([ -])\d{5}\1\d(?:[ /-]?\d)?$"),
    "abn": re.compile(r"^\d{2}([ -])\d{3}\1\d{3}\1\d{3}$"),
    "acn": re.compile(r"^\d{3}([ -])\d{3}\1\d{3}$"),
    "card": re.compile(r"^\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}$"),
    "crn": re.compile(r"^\d{3}([ -])\d{3}\1\d{3}[ -]?[A-Za-z]$"),
}


def _written_as(kind: str, value: str) -> bool:
    return _GROUPINGS[kind].match(value) is not None


_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "tfn": checksums.tfn_valid,
    "medicare": checksums.medicare_valid,
    "abn": checksums.abn_valid,
    "acn": checksums.acn_valid,
    "card": checksums.luhn_valid,
    "crn": checksums.crn_valid,
}


def _in_windows(pattern: re.Pattern[str], text: _Text) -> list[re.Match[str]]:
    # endpos hides what follows the window from look-aheads; the 4-character margin covers them.
    return [m for start, end in text.number_windows for m in pattern.finditer(text.raw, start, end)]


def _identifier(d: IdentifierDetector) -> Find:
    candidates = _IDENTIFIER_CANDIDATES[d.kind]
    valid = _VALIDATORS[d.kind]
    keywords = _keyword_regex(d.keywords) if d.keywords else None

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        hits = []
        for m in _in_windows(candidates, text):
            value = m.group()
            if not valid(_SEPARATORS.sub("", value)):
                continue
            if d.evidence != "checksum":
                keyword = keywords is not None and _near(keywords, text, m.start(), m.end(), d.window)
                grouped = d.evidence == "keyword_or_grouping" and _written_as(d.kind, value)
                if not (keyword or grouped):
                    continue
            hits.append(Hit(m.start(), m.end()))
        return hits

    return find


_PHONE = re.compile(
    r"(?<![\d+])(?:"
    r"(?:\+?61[ -]?|0)4\d{2}[ -]?\d{3}[ -]?\d{3}"  # mobile
    r"|(?:\+?61[ -]?\(?0?|\(?0)[2378]\)?[ -]?\d{4}[ -]?\d{4}"  # geographic
    r"|1[38]00[ -]?\d{3}[ -]?\d{3}|13[ -]?\d{2}[ -]?\d{2}"  # service numbers, skipped unless disallowed
    r")(?![\d])"
)
_SERVICE_PREFIXES = ("1300", "1800", "13")


def _digits_only(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _national(digits: str) -> str:
    return "0" + digits[2:] if digits.startswith("61") else digits


def _phone(d: PhoneDetector) -> Find:
    allowed = frozenset(_national(_digits_only(n)) for n in d.allow)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        hits = []
        for m in _in_windows(_PHONE, text):
            number = _national(_digits_only(m.group()))
            if number in allowed:
                continue
            if d.allow_service_numbers and number.startswith(_SERVICE_PREFIXES):
                continue
            hits.append(Hit(m.start(), m.end()))
        return hits

    return find


_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


def _domain_allowed(host: str, patterns: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for p in patterns:
        p = p.lower()
        if p.startswith("*."):
            if host == p[2:] or host.endswith(p[1:]):
                return True
        elif host == p or host == "www." + p:
            return True
    return False


def _email(d: EmailDetector) -> Find:
    allow = tuple(d.allow_domains)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if not text.has_at:
            return []
        return [
            Hit(m.start(), m.end())
            for m in _EMAIL.finditer(text.raw)
            if not _domain_allowed(m.group(1), allow)
        ]

    return find


_STREET_TYPES = (
    "Street|St|Road|Rd|Avenue|Ave|Drive|Dr|Court|Ct|Place|Pl|Crescent|Cres|Parade|Pde|Lane|Ln|Terrace|Tce"
    "|Way|Highway|Hwy|Close|Cl|Circuit|Cct|Boulevard|Blvd"
)
_ADDRESS = re.compile(
    rf"(?<![\w$.,])(?:(?:Unit|Apt|Flat)\s+)?\d{{1,5}}[A-Za-z]?(?:/\d{{1,5}}[A-Za-z]?)?\s+"
    rf"(?:[A-Z][a-z]+\s+){{1,3}}(?:{_STREET_TYPES})\b\.?"
)


def _street_address(d: StreetAddressDetector) -> Find:
    allow = tuple(a.lower() for a in d.allow)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if not text.has_digit:
            return []
        return [
            Hit(m.start(), m.end())
            for m in _ADDRESS.finditer(text.raw)
            if not any(a in text.raw[m.start() : m.end() + 40].lower() for a in allow)
        ]

    return find


_DATE = re.compile(
    r"(?<![\d/.-])(?:0?[1-9]|[12]\d|3[01])([/.-])(?:0?[1-9]|1[0-2])\1(?:19|20)\d{2}(?![\d/-])(?!\.\d)"
    r"|\b(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)"
    r"[a-z]*,?\s+(?:19|20)\d{2}\b",
    re.IGNORECASE,
)


def _date_of_birth(d: DateOfBirthDetector) -> Find:
    keywords = _keyword_regex(d.keywords)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if not text.has_digit:
            return []
        return [
            Hit(m.start(), m.end())
            for m in _DATE.finditer(text.raw)
            if _near(keywords, text, m.start(), m.end(), d.window)
        ]

    return find


_LEET: dict[str, str] = {
    "a": "[a@4*]",
    "e": "[e3*]",
    "i": "[i1!*|]",
    "o": "[o0*]",
    "u": "[u*]",
    "s": "[s$5]",
    "t": "[t7]",
    "l": "[l1|]",
}


def _term_words(term: str, *, inflect: bool) -> list[frozenset[str]]:
    """The gate words of each word of ``term`` (all its forms where it is inflected), split as the text is."""
    words = term.lower().split()
    out = []
    for i, word in enumerate(words):
        forms = inflections(word) if inflect and i in (0, len(words) - 1) else [word]
        for j, _piece in enumerate(_TOKEN.findall(word)):
            # A form's j-th token: "can't" -> "can", "t"; every form keeps the apostrophe's split.
            out.append(frozenset(toks[j] for f in forms if len(toks := _TOKEN.findall(f)) > j))
    return out


def inflections(word: str) -> list[str]:
    """Regular English inflections of one word: kill -> kills, killed, killing; die -> dies, died, dying;
    stab -> stabbed, stabbing; hurry -> hurries, hurried. Irregular forms go into the lexicon as terms."""
    forms = {word}
    if len(word) < 3 or not word.isalpha():
        return sorted(forms)
    forms.update({word + "s", word + "es", word + "ed", word + "ing", word + "er", word + "ers"})
    if word.endswith("e"):
        forms.update({word + "d", word[:-1] + "ing", word + "r", word + "rs"})
    if word.endswith("ie"):
        forms.add(word[:-2] + "ying")
    if word.endswith("y") and word[-2] not in "aeiou":
        forms.update({word[:-1] + "ies", word[:-1] + "ied"})
    if word[-1] not in "aeiouwxy" and word[-2] in "aeiou" and word[-3] not in "aeiou":
        forms.update({word + word[-1] + "ed", word + word[-1] + "ing", word + word[-1] + "er"})
    return sorted(forms)


def _term_regex(term: str, *, inflect: bool, obfuscate: bool) -> str:
    words = term.lower().split()
    parts = []
    for i, word in enumerate(words):
        # Inflect the head (first) and the last word: "end my life" -> "ending my life", "kill myself".
        forms = inflections(word) if inflect and (i == 0 or i == len(words) - 1) else [word]
        if obfuscate:
            # Disguised spellings: look-alike digits and symbols, and any letter but the first starred out.
            alts = [f[0] + "".join(_LEET.get(c, f"[{re.escape(c)}*]") for c in f[1:]) for f in forms]
        else:
            alts = [re.escape(f).replace("'", "['\u2019]") for f in forms]
        parts.append("(?:" + "|".join(sorted(alts, key=len, reverse=True)) + ")")
    return r"[\s\-]+".join(parts)


def lexicon_terms(d: LexiconDetector) -> list[str]:
    """The terms plus, for each with an apostrophe, the way people type it without one (dont, cant, im)."""
    terms = list(d.terms)
    terms += [t.replace("'", "") for t in d.terms if "'" in t and t.replace("'", "") not in terms]
    return terms


def _lexicon(d: LexiconDetector) -> Find:
    terms = lexicon_terms(d)
    body = "|".join(_term_regex(t, inflect=d.inflections, obfuscate=d.obfuscation) for t in terms)
    pattern = re.compile(rf"(?<![\w@#*$]){'(?:' + body + ')'}(?![\w*])", re.IGNORECASE)
    exclude = re.compile("|".join(f"(?:{p})" for p in d.exclude), re.IGNORECASE) if d.exclude else None
    plain = frozenset(
        f for t in terms for f in (inflections(t.lower()) if d.inflections else [t.lower()]) if f.isalnum()
    )
    all_plain = all(t.isalnum() for t in terms)
    # A disguised match starts, on a boundary, with a term's plain first letter, runs on for at least the
    # shortest term's length in letters and look-alikes, and has a look-alike after a few letters.
    heads = [
        w
        for t in terms
        for w in (inflections(t.split()[0].lower()) if d.inflections else [t.split()[0].lower()])
    ]
    first_letters = "".join(sorted({re.escape(h[0]) for h in heads}))
    shortest = min(len(h) for h in heads)
    # Zero-width, so finditer yields every such start, overlapping ones too.
    disguised = re.compile(
        rf"(?<![\w@#*$])(?=[{first_letters}](?=[a-z*@$!|013457]{{{shortest - 1}}})[a-z]*[*@$!|013457])",
        re.IGNORECASE,
    )
    # For each term, the words it needs (each as the set of its forms): a term is possible only when every
    # one of its words is in the text, which rules out "can't go on" for a post that merely says "can".
    # Indexed by the forms of each term's first word (C-level set intersection finds the candidates).
    by_first: dict[str, list[list[frozenset[str]]]] = {}
    if not d.obfuscation:
        for t in terms:
            needed = _term_words(t, inflect=d.inflections)
            for form in needed[0]:
                by_first.setdefault(form, []).append(needed[1:])
    firsts = frozenset(by_first)

    def possible(words: frozenset[str]) -> bool:
        for first in firsts & words:
            for rest in by_first[first]:
                for forms in rest:
                    if forms.isdisjoint(words):
                        break
                else:
                    return True
        return False

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if by_first and not possible(text.words):
            return []
        # A disguised match starts with a plain letter, so it has a letter followed by a look-alike symbol
        # somewhere; without one, a match is a plain form and the cheap word check decides.
        matches: Iterable[re.Match[str]]
        if d.obfuscation and all_plain and plain.isdisjoint(text.words):
            if not text.disguise_chars:
                return []
            # No plain form: every match is disguised and starts where ``disguised`` does, so the pattern is
            # tried only there (the leftmost non-overlapping matches, as finditer would find them).
            matches = []
            end = 0
            for start in disguised.finditer(text.raw):
                if start.start() >= end and (m := pattern.match(text.raw, start.start())) is not None:
                    matches.append(m)
                    end = m.end()
        else:
            matches = pattern.finditer(text.raw)
        hits = []
        for m in matches:
            if exclude is not None and _excluded(exclude, text.raw, m.start(), m.end()):
                continue
            hits.append(Hit(m.start(), m.end()))
        return hits

    return find


def _length(d: LengthDetector) -> Find:
    limits = {k.lower(): v for k, v in d.limits.items()}

    def find(text: _Text, ctx: Context) -> list[Hit]:
        limit = limits.get((ctx.platform or "").lower())
        if limit is None or len(text.raw) <= limit:
            return []
        return [
            Hit(limit, len(text.raw), detail=f"{len(text.raw)} characters; {ctx.platform} allows {limit}")
        ]

    return find


_URL = re.compile(
    r"(?i)\b(?:(https?)://|www\.)([a-z0-9](?:[a-z0-9-]{0,62}\.)*[a-z0-9-]{1,63}\.[a-z]{2,24})(?:[/?#][^\s<>\"']*)?"
    r"|\b((?:[a-z0-9](?:[a-z0-9-]{0,62})\.)+(?:com|net|org|info|io|ly|co|xyz|au|gl|gd|click|top)"
    r"(?:\.[a-z]{2})?)/[^\s<>\"']*"
)


def _link_domains(d: LinkDomainsDetector) -> Find:
    allow = tuple(d.allow)
    shorteners = frozenset(s.lower() for s in d.shorteners)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if not text.maybe_link:
            return []
        hits = []
        for m in _URL.finditer(text.raw):
            scheme, host = m.group(1), (m.group(2) or m.group(3) or "").lower()
            if host in shorteners or host.removeprefix("www.") in shorteners:
                hits.append(Hit(m.start(), m.end(), detail=f"{host} is a link shortener"))
            elif not _domain_allowed(host, allow):
                hits.append(Hit(m.start(), m.end(), detail=f"{host} is not an approved domain"))
            elif d.require_https and scheme is not None and scheme.lower() == "http":
                hits.append(Hit(m.start(), m.end(), detail="the link is not HTTPS"))
        return hits

    return find


def _schedule_window(d: ScheduleWindowDetector) -> Find:
    def find(_text: _Text, ctx: Context) -> list[Hit]:
        if d.mode is not None and d.mode in ctx.active_modes:
            return [Hit(detail=f"{d.mode} mode is on")]
        if any(w.start <= ctx.now < w.end for w in d.windows):
            return [Hit(detail="inside a scheduled window")]
        return []

    return find


def _required_element(d: RequiredElementDetector) -> Find:
    when = frozenset(d.when_reply_to_labels)
    elements = [re.compile(p, re.IGNORECASE) for p in d.elements]

    def find(text: _Text, ctx: Context) -> list[Hit]:
        if not when & ctx.reply_to_labels:
            return []
        found = sum(1 for e in elements if e.search(text.raw))
        if found >= d.min_count:
            return []
        return [Hit(detail=f"it has {found} of the {d.min_count} required")]

    return find


_POOR_ALT = re.compile(
    r"^\s*(?:an?\s+)?(?:image|picture|photo|graphic|img)(?:\s+of)?\s*\.?\s*$"
    r"|^\s*(?:image|picture|photo) of\b",
    re.IGNORECASE,
)


def _media_alt_text(d: MediaAltTextDetector) -> Find:
    def find(_text: _Text, ctx: Context) -> list[Hit]:
        hits = []
        for i, item in enumerate(ctx.media):
            if item.type in ("image", "gif") and not item.decorative:
                alt = (item.alt_text or "").strip()
                if not alt:
                    hits.append(Hit(detail=f"media[{i}] ({item.type}) has no alt text"))
                elif _POOR_ALT.search(alt):
                    hits.append(Hit(detail=f"media[{i}] alt text starts with 'image of' or says nothing"))
                elif len(alt) > d.max_alt_length:
                    hits.append(
                        Hit(detail=f"media[{i}] alt text is longer than {d.max_alt_length} characters")
                    )
            elif item.type == "video" and d.require_captions and not item.captions:
                hits.append(Hit(detail=f"media[{i}] (video) has no captions"))
        return hits

    return find


def _media_document(d: MediaDocumentDetector) -> Find:
    terms = _keyword_regex(d.terms)

    def find(text: _Text, ctx: Context) -> list[Hit]:
        images = [(i, m) for i, m in enumerate(ctx.media) if m.type in ("image", "gif")]
        if not images:
            return []
        hits = [Hit(m.start(), m.end(), detail="an image is attached") for m in terms.finditer(text.raw)]
        for i, item in images:
            if item.alt_text and terms.search(item.alt_text):
                hits.append(Hit(detail=f"media[{i}] alt text describes a document or card"))
        return hits

    return find


def _repetition(_d: RepetitionDetector) -> Find:
    def find(_text: _Text, ctx: Context) -> list[Hit]:
        return [Hit(detail="a near-duplicate of an earlier post by the same author")] if ctx.duplicate else []

    return find


def _authorisation(_d: AuthorisationDetector) -> Find:
    def find(_text: _Text, ctx: Context) -> list[Hit]:
        allowed = ctx.authorised_departments
        if ctx.department is None or allowed is None or ctx.department in allowed:
            return []
        return [Hit(detail="the checker's token does not cover the reply's department")]

    return find


def _embargo(d: EmbargoDetector) -> Find:
    items = [(_keyword_regex(item.terms), item.until) for item in d.items]

    def find(text: _Text, ctx: Context) -> list[Hit]:
        hits: list[Hit] = []
        for terms, until in items:
            if ctx.now < until:
                detail = f"embargoed until {until.isoformat()}"
                hits.extend(Hit(m.start(), m.end(), detail=detail) for m in terms.finditer(text.raw))
        return hits

    return find


_BUILDERS: dict[type[object], Callable[..., Find]] = {
    RegexDetector: _regex,
    IdentifierDetector: _identifier,
    PhoneDetector: _phone,
    EmailDetector: _email,
    StreetAddressDetector: _street_address,
    DateOfBirthDetector: _date_of_birth,
    LexiconDetector: _lexicon,
    LengthDetector: _length,
    LinkDomainsDetector: _link_domains,
    ScheduleWindowDetector: _schedule_window,
    RequiredElementDetector: _required_element,
    MediaAltTextDetector: _media_alt_text,
    MediaDocumentDetector: _media_document,
    RepetitionDetector: _repetition,
    AuthorisationDetector: _authorisation,
    EmbargoDetector: _embargo,
}


# --- compile and evaluate --------------------------------------------------------------------------------


def _gate(detector: object) -> frozenset[str] | None:
    """Words of which a match must contain one; None when the detector has no such promise."""
    words: set[str | None] = set()
    if isinstance(detector, RegexDetector):
        if detector.keywords:  # a keyword is required near every match
            words = {gate_tokens(k) for k in detector.keywords}
        elif detector.gate:
            words = set(detector.gate)
        elif all(isinstance(p, GatedPattern) for p in detector.patterns):
            words = {w for p in detector.patterns if isinstance(p, GatedPattern) for w in p.gate}
    elif isinstance(detector, DateOfBirthDetector) or (
        isinstance(detector, IdentifierDetector) and detector.evidence == "keyword"
    ):
        words = {gate_tokens(k) for k in detector.keywords}
    elif isinstance(detector, PhoneDetector) or (
        isinstance(detector, IdentifierDetector) and detector.evidence != "keyword"
    ):
        words = {DIGITS}  # they only look inside number windows, which need 6 digits
    elif isinstance(detector, StreetAddressDetector):
        words = {w.lower() for w in _STREET_TYPES.split("|")}
    elif isinstance(detector, LexiconDetector) and not detector.obfuscation:
        # Every match of a term contains each of its words (the first and last in some inflected form):
        # gate on the term's least common word, so "can't go on" waits for "can't", not every "go".
        for term in lexicon_terms(detector):
            terms_words = term.lower().split()
            i = _rarest(terms_words)
            inflected = detector.inflections and i in (0, len(terms_words) - 1)
            forms = inflections(terms_words[i]) if inflected else [terms_words[i]]
            words.update(gate_tokens(f) for f in forms)
    if not words or None in words:
        return None
    return frozenset(w for w in words if w is not None)


_COMMON_WORDS = (
    "i me my myself you your we us our he she they it the a an and or of in on at to for from be is are "
    "was not no all up go get just can can't don't won't want say end take self better off without "
    "nothing everyone someone life"
)
_COMMON = frozenset(_COMMON_WORDS.split())


def _rarest(words: list[str]) -> int:
    """Index of the word to gate on: the longest that is not a common word (the longest if all are)."""
    candidates = [i for i, w in enumerate(words) if w not in _COMMON] or list(range(len(words)))
    return max(candidates, key=lambda i: len(words[i]))


def compile_pack(pack: PolicyPack, *, gates: bool = True) -> CompiledPack:
    """Precompile ``pack``; ``gates=False`` runs every rule on every text (tests: gates change nothing)."""
    compiled = []
    for rule in pack.rules:
        if not rule.enabled:
            continue
        compiled.append(
            CompiledRule(
                rule=rule,
                find=_BUILDERS[type(rule.detector)](rule.detector),
                inbound=rule.applies_to in ("inbound", "both"),
                outbound=rule.applies_to in ("outbound", "both"),
                crisis=rule.label in CRISIS_LABELS,
                identifier=isinstance(rule.detector, IdentifierDetector),
                redact_mask=rule.redact_as or f"[{rule.label}]",
                gate=_gate(rule.detector) if gates else None,
                switched=bool(rule.modes.only_in or rule.modes.off_in),
            )
        )
    # Crisis rules first: whatever happens to the others, they have already run.
    compiled.sort(key=lambda r: not r.crisis)
    inbound = tuple(r for r in compiled if r.inbound)
    outbound = tuple(r for r in compiled if r.outbound)
    return CompiledPack(
        pack=pack,
        rules=tuple(compiled),
        inbound=inbound,
        outbound=outbound,
        masks={r.rule.id: r.redact_mask for r in compiled},
    )


def _mode_allows(rule: Rule, modes: frozenset[str]) -> bool:
    switch = rule.modes
    if switch.only_in and not modes.intersection(switch.only_in):
        return False
    return not (switch.off_in and modes.intersection(switch.off_in))


def evaluate(pack: CompiledPack, text: str, ctx: Context) -> Evaluation:
    t = _Text(text)
    inbound = ctx.direction == "inbound"
    findings: list[Finding] = []
    failed: list[str] = []
    identifier_spans: list[tuple[int, int, int]] = []  # (index into findings, start, end)
    plan = pack.inbound_plan if inbound else pack.outbound_plan
    rules = plan.rules
    for i in plan.candidates(t):
        cr = rules[i]
        rule = cr.rule
        if cr.switched and not _mode_allows(rule, ctx.active_modes):
            continue
        if rule.visibility is not None and rule.visibility != ctx.visibility:
            continue
        try:
            hits = cr.find(t, ctx)
        except Exception:
            # Isolated on purpose: a broken rule must not hide a crisis; it is reported, not raised.
            failed.append(rule.id)
            continue
        if not hits:
            continue
        action = rule.action_for(ctx.direction)
        for hit in hits:
            message = rule.message if hit.detail is None else f"{rule.message} ({hit.detail})"
            if cr.identifier and hit.start is not None and hit.end is not None:
                identifier_spans.append((len(findings), hit.start, hit.end))
            findings.append(
                Finding(
                    rule_id=rule.id,
                    label=rule.label,
                    severity=rule.severity,
                    action=action,
                    start=hit.start,
                    end=hit.end,
                    message=message,
                    suggestion=rule.suggestion,
                    source=rule.source,
                )
            )
    if len(identifier_spans) > 1:
        findings = _prefer_longest_identifier(findings, identifier_spans)
    findings.sort(key=lambda f: (f.start if f.start is not None else -1, f.rule_id))
    return Evaluation(findings=findings, failed_rules=failed)


def _prefer_longest_identifier(findings: list[Finding], spans: list[tuple[int, int, int]]) -> list[Finding]:
    """An identifier inside a longer checksum-valid one (TFN-shaped digits in an ABN) is the longer one."""
    drop = set()
    for i, s1, e1 in spans:
        for j, s2, e2 in spans:
            if i != j and s2 < e1 and s1 < e2 and (e2 - s2) > (e1 - s1):
                drop.add(i)
    return [f for k, f in enumerate(findings) if k not in drop]


# --- inbound screening -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Screening:
    labels: list[str]
    findings: list[Finding]
    risk: Risk
    priority: int
    redacted_text: str
    crisis: bool
    failed_rules: list[str]
    policy_version: str


_RISK_OF_RANK: dict[int, Risk] = {0: "low", 1: "low", 2: "medium", 3: "high", 4: "critical"}
PRIORITY_OF_RISK: dict[Risk, int] = {"critical": 1, "high": 2, "medium": 3, "low": 4}


def screen(pack: CompiledPack, text: str, ctx: Context) -> Screening:
    result = evaluate(pack, text, ctx)
    labels = sorted({f.label for f in result.findings})
    crisis = bool(CRISIS_LABELS.intersection(labels))
    top = max((SEVERITY_RANK[f.severity] for f in result.findings), default=0)
    risk: Risk = "critical" if crisis else _RISK_OF_RANK[top]
    masks = pack.masks
    to_mask = [f for f in result.findings if f.action == "redact" and f.start is not None]
    return Screening(
        labels=labels,
        findings=result.findings,
        risk=risk,
        priority=PRIORITY_OF_RISK[risk],
        redacted_text=redact(text, to_mask, masks),
        crisis=crisis,
        failed_rules=result.failed_rules,
        policy_version=pack.policy_version,
    )


def redact(text: str, findings: Sequence[Finding], masks: dict[str, str]) -> str:
    """Replace each finding's span with its rule's mask (``[TFN removed]``); overlapping spans merge."""
    out: list[str] = []
    cursor = 0
    for f in sorted(findings, key=lambda f: (f.start or 0, -(f.end or 0))):
        start, end = f.start or 0, f.end or 0
        if end <= cursor:
            continue
        if start < cursor:
            start = cursor
        else:
            out.append(text[cursor:start])
            out.append(masks.get(f.rule_id, f"[{f.label}]"))
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


# --- outbound checks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    decision: Decision
    findings: list[Finding]
    failed_rules: list[str]
    policy_version: str


def check(pack: CompiledPack, text: str, ctx: Context) -> CheckResult:
    result = evaluate(pack, text, ctx)
    strongest = max((ACTION_RANK[f.action] for f in result.findings), default=0)
    decision = DECISION_OF[next(a for a, r in ACTION_RANK.items() if r == strongest)]
    if result.failed_rules and decision == "allow":
        # A rule that could not run cannot vouch for the reply: a person looks at it.
        decision = "review"
    return CheckResult(
        decision=decision,
        findings=result.findings,
        failed_rules=result.failed_rules,
        policy_version=pack.policy_version,
    )
