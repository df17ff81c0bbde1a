"""Evaluating a compiled policy pack against one text: pure, no I/O, no logging of content.

``compile_pack`` turns a validated ``PolicyPack`` into detectors with precompiled regular expressions and
cheap gates (words, a number window, an ``@``, a link), so a post without a run of 6 digits never runs the
identifier or phone patterns. Patterns are read with ``re``'s parser at compile time to derive, with proof not
trust, a case-sensitive twin for lowercased ASCII text and a prefilter of words every match contains
(docs/policy.md, "Speed"); neither changes a finding. ``compile_pack(pack, optimised=False)`` compiles the
plain definition of the same rules instead (every rule, every pattern as written on the whole text), which
tests require the optimised pack to agree with. ``evaluate`` runs every rule that applies to the
direction and the active modes; each rule is isolated, so one failing rule is reported in ``failed_rules`` and
never stops the crisis rules (which run first). ``screen`` and ``check`` turn findings into the inbound
screening and the outbound decision.
"""

from __future__ import annotations

import importlib
import re
import string
import sys
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

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


class Hit(NamedTuple):
    """Where a detector matched (no span for whole-message rules) and, optionally, a detail for the message.
    A detail never contains the matched value: findings are logged and shown, the value must not be.
    (A named tuple: built for every match, it costs a fifth of a frozen dataclass.)"""

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


# The results below are plain dataclasses (not frozen: they hold lists, so they never were hashable, and a
# frozen dataclass costs microseconds to build, a fifth of a screening's budget).
@dataclass
class Evaluation:
    findings: list[Finding]
    failed_rules: list[str] = field(default_factory=list)


class _Text:
    """The text plus features computed once and shared by every detector: its lowercase words (for the
    rules' speed gates) and whether it has a digit, an @ or a dot at all."""

    __slots__ = (
        "_disguised",
        "_longest_run",
        "_windows",
        "ascii_bytes",
        "has_at",
        "has_digit",
        "letters_and_lookalikes",
        "lower",
        "many_digits",
        "maybe_link",
        "raw",
        "words",
    )

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self._windows: list[tuple[int, int]] | None = None
        self._disguised: bool | None = None
        self.letters_and_lookalikes = b""  # set with ``disguised`` for ASCII text: letters a, look-alikes d
        self._longest_run = 0
        lower = raw.lower()
        # An ASCII text lowercased keeps every character's place, so case-insensitive patterns can run on it
        # case-sensitively (see ``_Rx``); None for other text, whose lowercase may differ in length.
        self.lower = lower if raw.isascii() else None
        # bytes.translate runs in C: non-ASCII becomes "?" and then, like all punctuation, a separator.
        self.ascii_bytes = ascii_bytes = lower.encode("ascii", "replace")
        words = ascii_bytes.translate(_SPLIT_BYTES).decode("ascii").split()
        if not raw.isascii() and _FOLDING.search(raw):
            # A case-insensitive pattern reads these as ASCII letters (kill in "k\u0130ll", self in
            # "my\u017felf"), a case-sensitive one as other characters: the words of both readings count.
            for reading in (raw.translate(_FOLD_TO_ASCII), raw.translate(_FOLD_TO_SPACE)):
                words += reading.lower().encode("ascii", "replace").translate(_SPLIT_BYTES).decode().split()
        self.words = frozenset(words)
        digit_count = len(ascii_bytes.translate(None, _NOT_DIGIT_BYTES))
        # \d matches the digits of other scripts too ("١٢ Smith Street").
        self.has_digit = digit_count > 0 or (not raw.isascii() and _DIGIT.search(raw) is not None)
        # A number window needs a run of 6 digits; non-ASCII text may hold other \d digits, so it always may.
        self.many_digits = digit_count >= 6 or not raw.isascii()
        self.has_at = "@" in raw
        # Every link the URL pattern finds has "/" (scheme or path) or starts with www.
        self.maybe_link = "/" in raw or "www" in self.words

    @property
    def disguise_chars(self) -> bool:
        """Whether the text has a look-alike character at all (few rules ask: not computed up front)."""
        return bool(self.ascii_bytes.translate(None, _NOT_DISGUISE_BYTES))

    @property
    def disguised(self) -> bool:
        """Whether a letter is followed by a look-alike ("sh!t", "b1tch"), as a disguised word must be. For
        text that is not ASCII, whether it has a look-alike at all (letters there are more than a-z)."""
        if self._disguised is None:
            if self.lower is None:
                self._disguised = self.disguise_chars
            else:
                self.letters_and_lookalikes = self.ascii_bytes.translate(_LETTER_THEN_LOOKALIKE)
                self._disguised = b"ad" in self.letters_and_lookalikes
        return self._disguised

    @property
    def number_windows(self) -> list[tuple[int, int]]:
        """Where an identifier or phone number can be: around each run of at least 6 digits (separated by
        at most two of space, dash, slash, parentheses), widened by 4 characters each side so the
        candidate patterns' look-arounds and a CRN's trailing letter still see their context."""
        if self._windows is None:
            windows: list[tuple[int, int]] = []
            longest = 0
            if self.has_digit:
                for m in _RUN_OF_6.finditer(self.raw):
                    longest = max(longest, sum(map(str.isdigit, m.group())))
                    start, end = max(0, m.start() - 4), min(len(self.raw), m.end() + 4)
                    if windows and start <= windows[-1][1]:
                        windows[-1] = (windows[-1][0], end)
                    else:
                        windows.append((start, end))
            self._windows = windows
            self._longest_run = longest
        return self._windows

    @property
    def longest_run(self) -> int:
        """The most digits of one run in the number windows (0 without a window)."""
        if self._windows is None:
            _ = self.number_windows
        return self._longest_run


_DIGIT = re.compile(r"\d")
# A run of digits separated by at most two of space, dash, slash, parentheses, with at least 6 digits: from
# its first digit to its last, as the run is maximal (a shorter run fails at each of its digits).
_RUN_OF_6 = re.compile(r"\d(?:[ \-/()]{0,2}\d){5,}")
# Everything but ASCII letters and digits separates words.
_SPLIT_BYTES = bytes(c if c < 128 and chr(c).isalnum() else 32 for c in range(256))
_NOT_DIGIT_BYTES = bytes(c for c in range(256) if not (48 <= c <= 57))
_NOT_DISGUISE_BYTES = bytes(c for c in range(256) if chr(c) not in "*@$!|013457")
# Letters -> a, look-alikes -> d: a disguised word has "ad" (a letter, then a look-alike) somewhere.
_LETTER_THEN_LOOKALIKE = bytes(
    ord("a") if 97 <= c <= 122 else ord("d") if chr(c) in "*@$!|013457" else 32 for c in range(256)
)
_TOKEN = re.compile(r"[a-z0-9]+")


# The parser of the standard library's ``re``: read a pattern's structure to prove its twin (``_Rx``) equal.
_re_parser: Any = importlib.import_module("re._parser")
# Non-ASCII characters that a case-insensitive pattern matches with an ASCII letter (dotted I, dotless i,
# long s, Kelvin sign); tests check the list against every code point.
FOLDS_TO_ASCII = frozenset({0x130, 0x131, 0x17F, 0x212A})
_FOLD_TO_ASCII = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}  # what each matches case-insensitively
_FOLD_TO_SPACE = dict.fromkeys(FOLDS_TO_ASCII, " ")
_FOLDING = re.compile("[" + "".join(map(chr, sorted(FOLDS_TO_ASCII))) + "]")
_ATOMS_FREE_OF_CASE = frozenset({"AT", "ANY", "CATEGORY", "GROUPREF", "NEGATE", "FAILURE", "SUCCESS"})


def _caseless(c: int) -> bool:
    """Whether a pattern character means the same with and without IGNORECASE on lowercased ASCII text."""
    return not (65 <= c <= 90) and c not in FOLDS_TO_ASCII


def _twin_safe(items: Iterable[tuple[Any, Any]]) -> bool:
    """Whether a parsed pattern uses only characters and constructs for which matching the ASCII text
    case-insensitively equals matching its lowercase case-sensitively; anything unknown says no."""
    for op, av in items:
        name = str(op)
        if name in _ATOMS_FREE_OF_CASE:
            continue
        if name in ("LITERAL", "NOT_LITERAL"):
            if not _caseless(av):
                return False
        elif name == "RANGE":
            lo, hi = av
            if (lo <= 90 and hi >= 65) or any(lo <= c <= hi for c in FOLDS_TO_ASCII):
                return False
        elif name == "IN":
            if not _twin_safe(av):
                return False
        elif name == "BRANCH":
            if not all(_twin_safe(branch.data) for branch in av[1]):
                return False
        elif name == "SUBPATTERN":
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags or not _twin_safe(sub.data):
                return False
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if not _twin_safe(av[2].data):
                return False
        elif name in ("ASSERT", "ASSERT_NOT"):
            if not _twin_safe(av[1].data):
                return False
        elif name == "ATOMIC_GROUP":
            if not _twin_safe(av.data):
                return False
        elif name == "GROUPREF_EXISTS":
            _group, yes, no = av
            if not _twin_safe(yes.data) or (no is not None and not _twin_safe(no.data)):
                return False
        else:
            return False
    return True


def _lowercase_twin(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """``pattern`` without IGNORECASE, for the lowercase of ASCII texts, when that is provably the same:
    every letter in it is lowercase ASCII and nothing in it switches flags. CPython matches case-sensitive
    patterns about twice as fast (and an ASCII lowercase has the raw text's length, so spans agree)."""
    if not pattern.flags & re.IGNORECASE:
        return None
    try:
        parsed = _re_parser.parse(pattern.pattern, pattern.flags)
        if not _twin_safe(parsed.data):
            return None
        twin = re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)
    except Exception:  # an unknown parser shape: keep the case-insensitive pattern
        return None
    # An inline (?i) would survive the flag change; such a pattern keeps running as it is.
    return twin if not twin.flags & re.IGNORECASE else None


_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})
# Stands for a \b in the strings below: it matches no character, but a word next to it is a whole word.
_BOUNDARY = "\x00"
_EXACT_MAX = 64  # the most strings a set of ``_exact`` holds before it gives up


def _exact(items: Iterable[tuple[Any, Any]]) -> frozenset[str] | None:
    """The strings a parsed (case-sensitive) sequence can match, or a few more; None when they are unbounded
    or too many. Assertions and boundaries match the empty string: they consume nothing."""
    out: frozenset[str] = frozenset({""})
    for item in items:
        ex = _exact_item(item)
        if ex is None:
            return None
        out = frozenset(a + b for a in out for b in ex)
        if len(out) > _EXACT_MAX:
            return None
    return out


def _exact_item(item: tuple[Any, Any]) -> frozenset[str] | None:
    op, av = item
    name = str(op)
    if name == "LITERAL":
        return frozenset({chr(av)})
    if name == "AT" and str(av) == "AT_BOUNDARY":
        return frozenset({_BOUNDARY})
    if name == "ASSERT_NOT" and _holds_alnum(av[1].data):  # (?<![a-z0-9]) or (?![\w*]): a word's edge
        return frozenset({_BOUNDARY})
    if name in ("AT", "ASSERT", "ASSERT_NOT"):
        return frozenset({""})
    if name == "IN":
        chars: set[str] = set()
        for member, value in av:
            kind = str(member)
            if kind == "LITERAL":
                chars.add(chr(value))
            elif kind == "RANGE" and value[1] - value[0] < 16:
                chars.update(chr(c) for c in range(value[0], value[1] + 1))
            else:  # a negated set, a category, a wide range
                return None
        return frozenset(chars)
    if name == "SUBPATTERN":
        _group, add_flags, del_flags, body = av
        return None if add_flags or del_flags else _exact(body.data)
    if name == "ATOMIC_GROUP":  # matches some of what its body can: a superset is still every string
        return _exact(av.data)
    if name == "BRANCH":
        union: set[str] = set()
        for alternative in av[1]:
            ex = _exact(alternative.data)
            if ex is None:
                return None
            union |= ex
            if len(union) > _EXACT_MAX:
                return None
        return frozenset(union)
    if name in _REPEATS:
        low, high, body = av
        if high > 4:
            return None
        once = _exact(body.data)
        if once is None:
            return None
        repeated: set[str] = set()
        power: frozenset[str] = frozenset({""})
        for count in range(high + 1):
            if count >= low:
                repeated |= power
            power = frozenset(a + b for a in power for b in once)
            if len(repeated) > _EXACT_MAX or len(power) > _EXACT_MAX:
                return None
        return frozenset(repeated)
    return None


Items = list[tuple[Any, Any]]


def _required(items: Items, left: bool = False, right: bool = False) -> list[frozenset[str]]:
    """Conditions every match of the parsed sequence meets: for each set, the match contains one of its
    strings. A run of elements with few possible strings gives the set of their concatenations, other
    elements give their own. ``left`` / ``right``: no word runs on across the start / end of the
    sequence's match; where that holds at a run's edge, its strings carry a ``_BOUNDARY`` there."""
    needs: list[frozenset[str]] = []
    run: frozenset[str] | None = None

    def close(k: int) -> None:  # the run ends before items[k]
        if run is None:
            return
        strings = frozenset(s + _BOUNDARY for s in run) if _separated_after(items[k:], right) else run
        if _never_empty(strings):
            needs.append(strings)

    for k, item in enumerate(items):
        ex = _exact_item(item)
        if ex is not None:
            if run is not None:
                joined = frozenset(a + b for a in run for b in ex)
                if len(joined) <= _EXACT_MAX:
                    run = joined
                    continue
                close(k)
            edge = _BOUNDARY if _separated_before(items[:k], left) else ""
            run = frozenset(edge + b for b in ex)
            continue
        close(k)
        run = None
        needs.extend(
            _required_item(item, _separated_before(items[:k], left), _separated_after(items[k + 1 :], right))
        )
    close(len(items))
    return needs


def _never_empty(strings: frozenset[str]) -> bool:
    return all(s.replace(_BOUNDARY, "") for s in strings)


def _required_item(item: tuple[Any, Any], left: bool, right: bool) -> list[frozenset[str]]:
    op, av = item
    name = str(op)
    if name == "SUBPATTERN":
        _group, add_flags, del_flags, body = av
        return [] if add_flags or del_flags else _required(body.data, left, right)
    if name == "ATOMIC_GROUP":
        return _required(av.data, left, right)
    if name in _REPEATS:
        # The first repetition: after it comes another (which starts as the body does) or what follows.
        low, high, body = av
        after = right and (high == 1 or _separated_after(body.data, False))
        return _required(body.data, left, after) if low >= 1 else []
    if name == "BRANCH":  # one condition of each alternative, joined: the match meets one of them
        union: set[str] = set()
        for alternative in av[1]:
            needs = _required(alternative.data, left, right)
            if not needs:
                return []
            union |= max(needs, key=_rank)
            if len(union) > 4 * _EXACT_MAX:  # too many to keep
                return []
        return [frozenset(union)]
    return []


def _separator(c: int) -> bool:
    """Not a letter or digit of ASCII: the word split of ``_Text`` separates words there."""
    return not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122)


_SEPARATOR_CATEGORIES = frozenset(
    {"CATEGORY_SPACE", "CATEGORY_NOT_WORD", "CATEGORY_UNI_SPACE", "CATEGORY_UNI_NOT_WORD"}
)
_WORD_CATEGORIES = frozenset({"CATEGORY_WORD", "CATEGORY_UNI_WORD"})


def _only_separators(members: Items) -> bool:
    """A character set ([...]) that holds no ASCII letter or digit."""
    for op, av in members:
        kind = str(op)
        if kind == "LITERAL" and _separator(av):
            continue
        if kind == "RANGE" and all(_separator(c) for c in range(av[0], min(av[1], 127) + 1)):
            continue
        if kind == "CATEGORY" and str(av) in _SEPARATOR_CATEGORIES:
            continue
        return False
    return True


def _holds_alnum(body: Items) -> bool:
    """A one-character look-around body ([...]) that holds every ASCII letter and digit."""
    if len(body) != 1 or str(body[0][0]) != "IN":
        return False
    members = body[0][1]
    if any(str(op) == "NEGATE" for op, _av in members):
        return False
    if any(str(op) == "CATEGORY" and str(av) in _WORD_CATEGORIES for op, av in members):
        return True
    chars: set[int] = set()
    for op, av in members:
        if str(op) == "LITERAL":
            chars.add(av)
        elif str(op) == "RANGE":
            chars.update(range(av[0], av[1] + 1))
    return all(c in chars for c in range(128) if not _separator(c) and not 65 <= c <= 90)


def _separated_after(items: Items, end: bool) -> bool:
    """Whether a word cannot run on across the position where ``items`` start: the text's next character
    is never a letter or digit, or there is a \\b (``end``: what holds where ``items`` match nothing)."""
    for k, (op, av) in enumerate(items):
        name = str(op)
        rest = items[k + 1 :]
        if name == "LITERAL":
            return _separator(av)
        if name == "IN":
            return _only_separators(av)
        if name == "ASSERT_NOT" and av[0] == 1 and _holds_alnum(av[1].data):
            return True
        if name == "AT" and str(av) == "AT_BOUNDARY":  # a word next to it ends there
            return True
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        if name == "SUBPATTERN":
            return not (av[1] or av[2]) and _separated_after(list(av[3].data) + rest, end)
        if name == "ATOMIC_GROUP":
            return _separated_after(list(av.data) + rest, end)
        if name in _REPEATS:
            low, _high, body = av
            first = _separated_after(list(body.data) + rest, end)
            return first if low >= 1 else first and _separated_after(rest, end)
        if name == "BRANCH":
            return all(_separated_after(list(alt.data) + rest, end) for alt in av[1])
        return False
    return end


def _separated_before(items: Items, start: bool) -> bool:
    """Whether a word cannot run on across the position where ``items`` end: the text's character before
    is never a letter or digit, or there is a \\b (``start``: what holds where ``items`` match nothing)."""
    for k in range(len(items) - 1, -1, -1):
        op, av = items[k]
        name = str(op)
        before = items[:k]
        if name == "LITERAL":
            return _separator(av)
        if name == "IN":
            return _only_separators(av)
        if name == "ASSERT_NOT" and av[0] == -1 and _holds_alnum(av[1].data):
            return True
        if name == "AT" and str(av) == "AT_BOUNDARY":
            return True
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        if name == "SUBPATTERN":
            return not (av[1] or av[2]) and _separated_before(before + list(av[3].data), start)
        if name == "ATOMIC_GROUP":
            return _separated_before(before + list(av.data), start)
        if name in _REPEATS:
            low, _high, body = av
            last = _separated_before(before + list(body.data), start)
            return last if low >= 1 else last and _separated_before(before, start)
        if name == "BRANCH":
            return all(_separated_before(before + list(alt.data), start) for alt in av[1])
        return False
    return start


def _selective(strings: AbstractSet[str]) -> tuple[int, int]:
    return min(len(s.replace(_BOUNDARY, "")) for s in strings), -len(strings)


def _rank(strings: AbstractSet[str]) -> tuple[bool, int, int]:
    """Conditions of whole words first (the cheapest test), then the most selective."""
    return all(_whole_words(s) for s in strings if s.isascii()), *_selective(strings)


_ALNUM_RUN = re.compile(r"[a-z0-9]+")


def _whole_words(s: str) -> list[str]:
    """The words that ``s`` holds whole (with a \\b or a separator on both sides), in order: wherever ``s``
    occurs in a text, they are words of the text."""
    return [m.group() for m in _ALNUM_RUN.finditer(s) if m.start() > 0 and m.end() < len(s)]


@dataclass(frozen=True)
class _Prefilter:
    """Conditions every match of a twin meets, tested before its scan: for each of ``words``, the text has
    one of those words; for each of ``strings``, the lowercase text contains one of those strings."""

    words: tuple[frozenset[str], ...] = ()
    strings: tuple[tuple[str, ...], ...] = ()


def _nodes(items: Items) -> Iterable[tuple[Any, Any]]:
    """Every node of a parsed pattern, nested ones too."""
    for op, av in items:
        yield op, av
        name = str(op)
        if name == "SUBPATTERN":
            yield from _nodes(av[3].data)
        elif name == "ATOMIC_GROUP":
            yield from _nodes(av.data)
        elif name in _REPEATS:
            yield from _nodes(av[2].data)
        elif name in ("ASSERT", "ASSERT_NOT"):
            yield from _nodes(av[1].data)
        elif name == "BRANCH":
            for alternative in av[1]:
                yield from _nodes(alternative.data)
        elif name == "GROUPREF_EXISTS":
            yield from _nodes(av[1].data)
            if av[2] is not None:
                yield from _nodes(av[2].data)


def _prefilter(pattern: re.Pattern[str]) -> _Prefilter:
    """Conditions of a twin, or of a case-sensitive pattern, for ASCII text, that are cheap to test: as
    sets of whole words (one C call each), else a few strings (an ``in`` test each); a condition met by a
    one-character string holds in most texts. The strings are lowercased: the text is tested lowercase.
    A case-insensitive pattern without a twin has none (its letters may fold onto others)."""
    if pattern.flags & re.IGNORECASE:
        return _Prefilter()
    try:
        parsed = list(_re_parser.parse(pattern.pattern, pattern.flags).data)
        # The look-arounds that mark a word's edge (``_holds_alnum``) leave out capitals, as a twin has none;
        # where a case-sensitive pattern's look-around lets a capital through, it gets no prefilter.
        for op, av in _nodes(parsed):
            if str(op) == "ASSERT_NOT" and _holds_alnum(av[1].data):
                members = av[1].data[0][1]
                if not any(str(o) == "CATEGORY" and str(a) in _WORD_CATEGORIES for o, a in members):
                    covered = {c for o, a in members if str(o) == "RANGE" for c in range(a[0], a[1] + 1)}
                    covered |= {a for o, a in members if str(o) == "LITERAL"}
                    if not all(c in covered for c in range(65, 91)):
                        return _Prefilter()
        needs = [frozenset(s.lower() for s in need) for need in _required(parsed)]
    except Exception:  # an unknown parser shape: no prefilter, the pattern always runs
        return _Prefilter()
    words: dict[frozenset[str], None] = {}
    strings: list[tuple[str, ...]] = []
    for need in sorted(needs, key=_rank, reverse=True):
        # A string with a non-ASCII character never occurs in an ASCII text (the only kind tested), so a
        # condition of such strings only is never met: the empty set of words says so.
        possible = [s for s in need if s.isascii()]
        per_string = [_whole_words(s) for s in possible]
        if all(per_string):
            # Each string's j-th whole word (from either end): every string has one in the set.
            k = min((len(w) for w in per_string), default=0)
            for j in [*range(k), *range(-k, 0)]:
                words[frozenset(w[j] for w in per_string)] = None
            if not possible:
                words[frozenset()] = None
        elif len(possible) <= 6 and _selective(frozenset(possible) or need)[0] >= 2:
            strings.append(tuple(sorted({s.replace(_BOUNDARY, "") for s in possible}, key=len, reverse=True)))
    best = sorted(words, key=lambda w: (min(map(len, w), default=99), -len(w)), reverse=True)
    return _Prefilter(words=tuple(best[:8]), strings=tuple(strings[:1]))


class _Rx:
    """A compiled pattern, its case-sensitive twin for lowercased ASCII text when there is one, and for ASCII
    text a prefilter (words or strings every match contains, ``_prefilter``): ``on`` picks the pattern and
    the string to run it on, or None when the prefilter proves there is no match. Text that is not ASCII
    always runs the pattern as written. Match positions are the same either way; a match's text is the
    lowercase one for the twin, so only callers that lowercase it anyway read it."""

    __slots__ = ("fast", "need_strings", "need_words", "slow")

    def __init__(self, slow: re.Pattern[str], optimised: bool = True) -> None:
        self.slow = slow
        # Plain (``compile_pack(optimised=False)``): no twin, no prefilter, the pattern as written.
        self.fast = _lowercase_twin(slow) if optimised else None
        prefilter = _prefilter(self.fast if self.fast is not None else slow) if optimised else _Prefilter()
        self.need_words = prefilter.words
        self.need_strings = prefilter.strings

    def on(self, text: _Text) -> tuple[re.Pattern[str], str] | None:
        lower = text.lower
        if lower is None:
            return self.slow, text.raw
        words = text.words
        for need in self.need_words:
            if need.isdisjoint(words):
                return None
        for strings in self.need_strings:
            if not any(map(lower.__contains__, strings)):
                return None
        return (self.fast, lower) if self.fast is not None else (self.slow, text.raw)

    def finditer(self, text: _Text, pos: int = 0, endpos: int = sys.maxsize) -> Iterable[re.Match[str]]:
        on = self.on(text)
        return () if on is None else on[0].finditer(on[1], pos, endpos)

    def search(self, text: _Text, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        on = self.on(text)
        return None if on is None else on[0].search(on[1], pos, endpos)


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


# Pseudo-words of gates for what a rule needs besides words (never a real word: words are letters and digits
# only). DIGITS: a number window (a run of at least 6 digits), which the identifier and phone rules look in.
DIGITS = "#digits"
AT = "#at"  # an "@": every e-mail address has one
LINK = "#link"  # a "/" or the word www: every link the URL pattern finds has one
DISGUISE = "#disguise"  # a letter followed by a look-alike ("sh!t"): every disguised lexicon word has one
DUPLICATE = "#duplicate"  # ingest flagged the post as a near-duplicate
IMAGE = "#image"  # an image or GIF is attached


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

    def candidates(self, text: _Text, ctx: Context) -> Sequence[int]:
        by_word = self.by_word
        opened = self.words.intersection(text.words)
        features = []
        # The number rules look only inside number windows: without one they cannot match.
        if text.many_digits and DIGITS in by_word and text.number_windows:
            features.append(DIGITS)
        if text.has_at and AT in by_word:
            features.append(AT)
        if text.maybe_link and LINK in by_word:
            features.append(LINK)
        if DISGUISE in by_word and text.disguised:
            features.append(DISGUISE)
        if ctx.duplicate and DUPLICATE in by_word:
            features.append(DUPLICATE)
        if ctx.media and IMAGE in by_word and any(m.type in ("image", "gif") for m in ctx.media):
            features.append(IMAGE)
        if not opened and not features:
            return self.always
        idx = set(self.always)
        for w in opened:
            idx.update(by_word[w])
        for w in features:
            idx.update(by_word[w])
        return sorted(idx)


@dataclass(frozen=True)
class CompiledPack:
    pack: PolicyPack
    rules: tuple[CompiledRule, ...]
    inbound: tuple[CompiledRule, ...] = ()
    outbound: tuple[CompiledRule, ...] = ()
    masks: dict[str, str] = field(default_factory=dict)
    optimised: bool = True  # False: the plain definition of the rules (``compile_pack``)
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


def _near(keywords: _Rx, text: _Text, start: int, end: int, window: int) -> bool:
    return keywords.search(text, max(0, start - window), min(len(text.raw), end + window)) is not None


def _regex(d: RegexDetector, optimised: bool) -> Find:
    flags = re.IGNORECASE if d.ignore_case else 0
    plain = [p for p in d.patterns if isinstance(p, str)]
    pattern = _Rx(re.compile("|".join(f"(?:{p})" for p in plain), flags), optimised) if plain else None
    gated = [_Rx(re.compile(p.pattern, flags), optimised) for p in d.patterns if isinstance(p, GatedPattern)]
    # The gated patterns each gate word opens, in the patterns' order: one intersection finds them.
    opens: dict[str, list[int]] = {}
    for i, p in enumerate(q for q in d.patterns if isinstance(q, GatedPattern)):
        for w in dict.fromkeys(p.gate):
            opens.setdefault(w, []).append(i)
    gate_words = frozenset(opens)
    keywords = _Rx(_keyword_regex(d.keywords), optimised) if d.keywords else None
    exclude = _exclusions(d.exclude, optimised)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        matches: list[re.Match[str]] = []
        if pattern is not None:
            matches.extend(pattern.finditer(text))
        if not optimised:  # every pattern: a gate is the pack's promise that its pattern needs the word
            for rx in gated:
                matches.extend(rx.finditer(text))
        elif opened := gate_words.intersection(text.words):
            order = (
                opens[next(iter(opened))]
                if len(opened) == 1
                else sorted({i for w in opened for i in opens[w]})
            )
            for i in order:
                matches.extend(gated[i].finditer(text))
        if len(matches) > 1:
            matches = sorted({(m.start(), m.end()): m for m in matches}.values(), key=lambda m: m.start())
        hits = []
        for m in matches:
            if m.end() == m.start():
                continue
            if keywords is not None and not _near(keywords, text, m.start(), m.end(), d.window):
                continue
            if exclude is not None and _excluded(exclude, text, m.start(), m.end()):
                continue
            # A named group "span" marks the part to report and redact (a name, not its "case officer").
            if "span" in m.re.groupindex and m.start("span") >= 0:
                hits.append(Hit(m.start("span"), m.end("span")))
            else:
                hits.append(Hit(m.start(), m.end()))
        return hits

    return find


def _exclusions(patterns: Sequence[str], optimised: bool) -> _Rx | None:
    if not patterns:
        return None
    return _Rx(re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE), optimised)


def _excluded(exclude: _Rx, text: _Text, start: int, end: int) -> bool:
    # A figure of speech excludes a match when the two overlap; look a sentence's width either side.
    for m in exclude.finditer(text, max(0, start - 80), min(len(text.raw), end + 80)):
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


def _fewest_digits(items: Items) -> int:
    """The fewest digits any match of a parsed pattern has (a lower bound: what is unsure counts 0)."""
    total = 0
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            total += 48 <= av <= 57
        elif name == "IN":
            digits_only = all(
                (str(o) == "CATEGORY" and str(a) in ("CATEGORY_DIGIT", "CATEGORY_UNI_DIGIT"))
                or (str(o) == "RANGE" and 48 <= a[0] <= a[1] <= 57)
                or (str(o) == "LITERAL" and 48 <= a <= 57)
                for o, a in av
            )
            total += digits_only
        elif name == "SUBPATTERN":
            total += _fewest_digits(av[3].data)
        elif name in _REPEATS:
            total += av[0] * _fewest_digits(av[2].data)
        elif name == "BRANCH":
            total += min(_fewest_digits(alternative.data) for alternative in av[1])
    return total


def _identifier(d: IdentifierDetector, optimised: bool) -> Find:
    candidates = _IDENTIFIER_CANDIDATES[d.kind]
    valid = _VALIDATORS[d.kind]
    keywords = _Rx(_keyword_regex(d.keywords), optimised) if d.keywords else None
    # A candidate's digits are joined by at most one separator, so they lie in one run of the windows: a
    # post whose longest run is shorter has no candidate (a date has 8 digits, an ABN 11).
    fewest = _fewest_digits(list(_re_parser.parse(candidates.pattern, candidates.flags).data))

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if optimised and text.longest_run < fewest:
            return []
        hits = []
        for m in _in_windows(candidates, text) if optimised else candidates.finditer(text.raw):
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


def _phone(d: PhoneDetector, optimised: bool) -> Find:
    allowed = frozenset(_national(_digits_only(n)) for n in d.allow)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        hits = []
        for m in _in_windows(_PHONE, text) if optimised else _PHONE.finditer(text.raw):
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


def _email(d: EmailDetector, optimised: bool) -> Find:
    allow = tuple(d.allow_domains)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if optimised and not text.has_at:
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


def _street_address(d: StreetAddressDetector, optimised: bool) -> Find:
    allow = tuple(a.lower() for a in d.allow)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if optimised and not text.has_digit:
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


def _date_of_birth(d: DateOfBirthDetector, optimised: bool) -> Find:
    keywords = _Rx(_keyword_regex(d.keywords), optimised)
    dates = _Rx(_DATE, optimised)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if optimised and not text.has_digit:
            return []
        return [
            Hit(m.start(), m.end())
            for m in dates.finditer(text)
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


_F = ord("f")
_MAY_PRECEDE = frozenset(b" e")


def _disguised_shape(text: _Text, shapes: bytes) -> int | None:
    """Where the first shape of a disguised start is in a lowercase ASCII text (``_disguise_shapes``): no
    disguised word starts before it; None if there is none. Most texts fail the first test, "a letter
    followed by a look-alike", a translate and a substring search."""
    if not text.disguised:
        return None
    pairs = text.letters_and_lookalikes
    mapped = text.ascii_bytes.translate(shapes)
    # Each letter followed by a look-alike ends a run of letters; the runs in order, the first that starts
    # with a first letter after a separator (or "!", "|", or the text's start) is the first shape.
    k = pairs.find(b"ad")
    while k != -1:
        start = max(pairs.rfind(b" ", 0, k), pairs.rfind(b"d", 0, k)) + 1
        if mapped[start] == _F and (start == 0 or mapped[start - 1] in _MAY_PRECEDE):
            return start
        k = pairs.find(b"ad", k + 1)
    return None


def _disguise_shapes(first_letters: AbstractSet[str]) -> bytes:
    """A bytes.translate table for lowercase ASCII text: a first letter of a term -> f, another letter -> a,
    a look-alike that may precede a word ("!", "|") -> e, the other look-alikes -> d, the other characters
    a disguised word cannot follow (\\w, "#") -> w, everything else -> space."""
    table = bytearray(b" " * 256)
    for c in range(256):
        ch = chr(c)
        if ch in first_letters:
            table[c] = ord("f")
        elif "a" <= ch <= "z":
            table[c] = ord("a")
        elif ch in "!|":
            table[c] = ord("e")
        elif ch in "*@$013457":
            table[c] = ord("d")
        elif (ch.isascii() and ch.isalnum()) or ch in "_#":
            table[c] = ord("w")
    return bytes(table)


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


def _plain_forms(d: LexiconDetector) -> frozenset[str]:
    terms = lexicon_terms(d)
    return frozenset(
        f for t in terms for f in (inflections(t.lower()) if d.inflections else [t.lower()]) if f.isalnum()
    )


def _heads(d: LexiconDetector) -> list[str]:
    """Every form of every term's first word."""
    return [
        w
        for t in lexicon_terms(d)
        for w in (inflections(t.split()[0].lower()) if d.inflections else [t.split()[0].lower()])
    ]


def _shapes_apply(d: LexiconDetector) -> bool:
    """Whether a disguised term must start with one of the letters a-z (so ``_disguise_shapes`` applies)."""
    return {h[0] for h in _heads(d)} <= set(string.ascii_lowercase)


def _lexicon(d: LexiconDetector, optimised: bool) -> Find:
    terms = lexicon_terms(d)
    body = "|".join(_term_regex(t, inflect=d.inflections, obfuscate=d.obfuscation) for t in terms)
    # The definition: every match of this pattern (the plain path scans for it and nothing else).
    pattern = _Rx(re.compile(rf"(?<![\w@#*$]){'(?:' + body + ')'}(?![\w*])", re.IGNORECASE), optimised)
    exclude = _exclusions(d.exclude, optimised)
    plain = _plain_forms(d)
    all_plain = all(t.isalnum() for t in terms)
    # A disguised match starts, on a boundary, with a term's plain first letter, runs on for at least the
    # shortest term's length in letters and look-alikes, and has a look-alike after a few letters.
    heads = _heads(d)
    first_letters = "".join(sorted({re.escape(h[0]) for h in heads}))
    shortest = min(len(h) for h in heads)
    # The shape of a disguised start in the ASCII text mapped by ``shapes``: a separator (or "!", "|"), a
    # first letter, letters, then a look-alike. Without it ``disguised`` finds no start; a C translate and
    # one search with a literal-set prefix tell, instead of the look-around at every character.
    firsts_of_heads = {h[0] for h in heads}
    shapes = _disguise_shapes(firsts_of_heads) if _shapes_apply(d) else None
    # Zero-width, so finditer yields every such start, overlapping ones too.
    disguised = _Rx(
        re.compile(
            rf"(?<![\w@#*$])(?=[{first_letters}](?=[a-z*@$!|013457]{{{shortest - 1}}})[a-z]*[*@$!|013457])",
            re.IGNORECASE,
        )
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

    def matches_of(text: _Text) -> Iterable[re.Match[str]]:
        """``pattern.finditer(text)``, found faster: a term is tried only when its words are in the text."""
        if by_first and not possible(text.words):
            return []
        # A disguised match starts with a plain letter, so it has a letter followed by a look-alike symbol
        # somewhere; without one, a match is a plain form and the cheap word check decides.
        matches: list[re.Match[str]]
        if d.obfuscation and all_plain and plain.isdisjoint(text.words):
            if not text.disguise_chars:
                return []
            first = 0
            if shapes is not None and text.lower is not None:
                shape = _disguised_shape(text, shapes)
                if shape is None:
                    return []
                first = shape
            # No plain form: every match is disguised and starts where ``disguised`` does, so the pattern is
            # tried only there (the leftmost non-overlapping matches, as finditer would find them).
            matches = []
            end = 0
            on = pattern.on(text)
            if on is None:
                return []
            rx, s = on
            for start in disguised.finditer(text, first):
                if start.start() >= end and (m := rx.match(s, start.start())) is not None:
                    matches.append(m)
                    end = m.end()
            return matches
        return pattern.finditer(text)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        hits = []
        for m in matches_of(text) if optimised else pattern.finditer(text):
            if exclude is not None and _excluded(exclude, text, m.start(), m.end()):
                continue
            hits.append(Hit(m.start(), m.end()))
        return hits

    return find


def _length(d: LengthDetector, _optimised: bool) -> Find:
    limits = {k.lower(): v for k, v in d.limits.items()}

    def find(text: _Text, ctx: Context) -> list[Hit]:
        limit = limits.get((ctx.platform or "").lower())
        if limit is None or len(text.raw) <= limit:
            return []
        return [
            Hit(limit, len(text.raw), detail=f"{len(text.raw)} characters; {ctx.platform} allows {limit}")
        ]

    return find


# The host and scheme are lowercased before use, so the case-sensitive twin's lowercase groups are the same.
_URL = re.compile(
    r"\b(?:(https?)://|www\.)([a-z0-9](?:[a-z0-9-]{0,62}\.)*[a-z0-9-]{1,63}\.[a-z]{2,24})(?:[/?#][^\s<>\"']*)?"
    r"|\b((?:[a-z0-9](?:[a-z0-9-]{0,62})\.)+(?:com|net|org|info|io|ly|co|xyz|au|gl|gd|click|top)"
    r"(?:\.[a-z]{2})?)/[^\s<>\"']*",
    re.IGNORECASE,
)


def _link_domains(d: LinkDomainsDetector, optimised: bool) -> Find:
    allow = tuple(d.allow)
    shorteners = frozenset(s.lower() for s in d.shorteners)
    urls = _Rx(_URL, optimised)

    def find(text: _Text, _ctx: Context) -> list[Hit]:
        if optimised and not text.maybe_link:
            return []
        hits = []
        for m in urls.finditer(text):
            scheme, host = m.group(1), (m.group(2) or m.group(3) or "").lower()
            if host in shorteners or host.removeprefix("www.") in shorteners:
                hits.append(Hit(m.start(), m.end(), detail=f"{host} is a link shortener"))
            elif not _domain_allowed(host, allow):
                hits.append(Hit(m.start(), m.end(), detail=f"{host} is not an approved domain"))
            elif d.require_https and scheme is not None and scheme.lower() == "http":
                hits.append(Hit(m.start(), m.end(), detail="the link is not HTTPS"))
        return hits

    return find


def _schedule_window(d: ScheduleWindowDetector, _optimised: bool) -> Find:
    def find(_text: _Text, ctx: Context) -> list[Hit]:
        if d.mode is not None and d.mode in ctx.active_modes:
            return [Hit(detail=f"{d.mode} mode is on")]
        if any(w.start <= ctx.now < w.end for w in d.windows):
            return [Hit(detail="inside a scheduled window")]
        return []

    return find


def _required_element(d: RequiredElementDetector, optimised: bool) -> Find:
    when = frozenset(d.when_reply_to_labels)
    elements = [_Rx(re.compile(p, re.IGNORECASE), optimised) for p in d.elements]

    def find(text: _Text, ctx: Context) -> list[Hit]:
        if not when & ctx.reply_to_labels:
            return []
        found = sum(1 for e in elements if e.search(text) is not None)
        if found >= d.min_count:
            return []
        return [Hit(detail=f"it has {found} of the {d.min_count} required")]

    return find


_POOR_ALT = re.compile(
    r"^\s*(?:an?\s+)?(?:image|picture|photo|graphic|img)(?:\s+of)?\s*\.?\s*$"
    r"|^\s*(?:image|picture|photo) of\b",
    re.IGNORECASE,
)


def _media_alt_text(d: MediaAltTextDetector, _optimised: bool) -> Find:
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


def _media_document(d: MediaDocumentDetector, optimised: bool) -> Find:
    terms = _Rx(_keyword_regex(d.terms), optimised)

    def find(text: _Text, ctx: Context) -> list[Hit]:
        images = [(i, m) for i, m in enumerate(ctx.media) if m.type in ("image", "gif")]
        if not images:
            return []
        hits = [Hit(m.start(), m.end(), detail="an image is attached") for m in terms.finditer(text)]
        for i, item in images:
            if item.alt_text and terms.slow.search(item.alt_text):
                hits.append(Hit(detail=f"media[{i}] alt text describes a document or card"))
        return hits

    return find


def _repetition(_d: RepetitionDetector, _optimised: bool) -> Find:
    def find(_text: _Text, ctx: Context) -> list[Hit]:
        return [Hit(detail="a near-duplicate of an earlier post by the same author")] if ctx.duplicate else []

    return find


def _authorisation(_d: AuthorisationDetector, _optimised: bool) -> Find:
    def find(_text: _Text, ctx: Context) -> list[Hit]:
        allowed = ctx.authorised_departments
        if ctx.department is None or allowed is None or ctx.department in allowed:
            return []
        return [Hit(detail="the checker's token does not cover the reply's department")]

    return find


def _embargo(d: EmbargoDetector, optimised: bool) -> Find:
    items = [(_Rx(_keyword_regex(item.terms), optimised), item.until) for item in d.items]

    def find(text: _Text, ctx: Context) -> list[Hit]:
        hits: list[Hit] = []
        for terms, until in items:
            if ctx.now < until:
                detail = f"embargoed until {until.isoformat()}"
                hits.extend(Hit(m.start(), m.end(), detail=detail) for m in terms.finditer(text))
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
    elif isinstance(detector, EmailDetector):
        words = {AT}
    elif isinstance(detector, LinkDomainsDetector):
        words = {LINK}
    elif isinstance(detector, RepetitionDetector):
        words = {DUPLICATE}
    elif isinstance(detector, MediaDocumentDetector):
        words = {IMAGE}
    elif isinstance(detector, LexiconDetector) and detector.obfuscation:
        # A match is a plain form (a word of the text) or disguised, with a letter before a look-alike.
        if all(t.isalnum() for t in lexicon_terms(detector)) and _shapes_apply(detector):
            words = {*_plain_forms(detector), DISGUISE}
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


def compile_pack(pack: PolicyPack, *, optimised: bool = True) -> CompiledPack:
    """Precompile ``pack``. ``optimised=False`` compiles the plain definition of the rules, for tests: every
    rule that applies runs (no gates), every pattern runs as written on the whole text (no twins, no
    prefilters, no number windows, no shortcut to a disguised word's start). The optimised pack must give
    exactly its results; tests/policy/test_equivalence.py compares the two."""
    compiled = []
    for rule in pack.rules:
        if not rule.enabled:
            continue
        compiled.append(
            CompiledRule(
                rule=rule,
                find=_BUILDERS[type(rule.detector)](rule.detector, optimised),
                inbound=rule.applies_to in ("inbound", "both"),
                outbound=rule.applies_to in ("outbound", "both"),
                crisis=rule.label in CRISIS_LABELS,
                identifier=isinstance(rule.detector, IdentifierDetector),
                redact_mask=rule.redact_as or f"[{rule.label}]",
                gate=_gate(rule.detector) if optimised else None,
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
        optimised=optimised,
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
    optimised = pack.optimised
    for i in plan.candidates(t, ctx) if optimised else range(len(rules)):
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
                (_finding if optimised else _construct)(
                    {
                        "rule_id": rule.id,
                        "label": rule.label,
                        "severity": rule.severity,
                        "action": action,
                        "start": hit.start,
                        "end": hit.end,
                        "message": message,
                        "suggestion": rule.suggestion,
                        "source": rule.source,
                    }
                )
            )
    if len(identifier_spans) > 1:
        findings = _prefer_longest_identifier(findings, identifier_spans)
    findings.sort(key=lambda f: (f.start if f.start is not None else -1, f.rule_id))
    return Evaluation(findings=findings, failed_rules=failed)


def _finding(fields: dict[str, Any]) -> Finding:
    """``Finding(**fields)`` without the frozen dataclass's ``__init__``, which sets each of the nine fields
    through ``object.__setattr__`` (microseconds per finding): the same fields, so the same equality, hash
    and repr. Every field must be given (tests compare with the constructor)."""
    finding = object.__new__(Finding)
    finding.__dict__.update(fields)
    return finding


def _construct(fields: dict[str, Any]) -> Finding:
    return Finding(**fields)


def _prefer_longest_identifier(findings: list[Finding], spans: list[tuple[int, int, int]]) -> list[Finding]:
    """An identifier inside a longer checksum-valid one (TFN-shaped digits in an ABN) is the longer one."""
    drop = set()
    for i, s1, e1 in spans:
        for j, s2, e2 in spans:
            if i != j and s2 < e1 and s1 < e2 and (e2 - s2) > (e1 - s1):
                drop.add(i)
    return [f for k, f in enumerate(findings) if k not in drop]


# --- inbound screening -----------------------------------------------------------------------------------


@dataclass
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
    if pack.optimised and not result.findings:  # most posts: what the general path gives for no findings
        return Screening(
            labels=[],
            findings=result.findings,
            risk="low",
            priority=PRIORITY_OF_RISK["low"],
            redacted_text=text,
            crisis=False,
            failed_rules=result.failed_rules,
            policy_version=pack.policy_version,
        )
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


@dataclass
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
