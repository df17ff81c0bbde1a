"""The policy-pack document: what a pack may say, validated before anything is stored or activated.

A pack is YAML (or JSON) parsed with ``yaml.safe_load`` and validated by ``PolicyPack``. Every string, list
and pattern has a limit, every regular expression must compile, and rule ids are unique, so an accepted pack
always compiles (``engine.compile_pack``). ``pack_problems`` turns validation errors into field problems that
name the rule id at fault (``rules[PI-01].detector.patterns.0``), because an index alone is useless to the
person who wrote the YAML.
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import FieldProblem

with warnings.catch_warnings():
    # The parser behind re, public as sre_parse (deprecated alias since 3.11, still shipped and typed).
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants
    import sre_parse

_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT)

Severity = Literal["info", "low", "medium", "high", "critical"]
Action = Literal["allow", "warn", "redact", "review", "block", "escalate"]
Direction = Literal["inbound", "outbound"]
Mode = Literal["caretaker", "crisis"]
Jurisdiction = Literal["CTH", "ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
MAX_PACK_BYTES = 256 * 1024
MAX_PACK_NODES = 100_000

ShortText = Annotated[str, Field(min_length=1, max_length=100)]
Pattern = Annotated[str, Field(min_length=1, max_length=1000)]
GateWord = Annotated[str, Field(pattern=r"^[a-z0-9]{1,40}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_patterns(patterns: list[str], *, ignore_case: bool = True) -> list[str]:
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise ValueError(f"pattern {i} is not a valid regular expression: {exc}") from exc
        if _nested_unbounded(sre_parse.parse(pattern)):
            # Python's re cannot be interrupted: (a+)+ style patterns can stall screening for minutes.
            raise ValueError(
                f"pattern {i} repeats an unbounded repetition (like (a+)+), which can take exponential "
                "time; bound the outer repetition, e.g. {1,25}"
            )
    return patterns


def _nested_unbounded(parsed: Any, inside: bool = False) -> bool:
    """True when an unbounded repeat (``*``, ``+``, ``{n,}``) sits inside another unbounded repeat."""
    for op, av in parsed:
        if op in _REPEATS:
            _low, high, sub = av
            unbounded = high == sre_constants.MAXREPEAT
            if unbounded and inside:
                return True
            if _nested_unbounded(sub, inside or unbounded):
                return True
        elif (
            (op is sre_constants.SUBPATTERN and _nested_unbounded(av[-1], inside))
            or (op is sre_constants.BRANCH and any(_nested_unbounded(b, inside) for b in av[1]))
            or (op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT) and _nested_unbounded(av[1], inside))
        ):
            return True
    return False


class GatedPattern(_Strict):
    """A pattern that runs only when the text has one of ``gate`` (every match contains one of them)."""

    pattern: Pattern
    gate: list[GateWord] = Field(min_length=1, max_length=100)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _check_patterns([value])[0]


class RegexDetector(_Strict):
    """Any of ``patterns`` matches; optionally only with one of ``keywords`` within ``window`` characters."""

    type: Literal["regex"]
    patterns: list[Pattern | GatedPattern] = Field(min_length=1, max_length=20)
    ignore_case: bool = True
    keywords: list[ShortText] = Field(default_factory=list, max_length=50)
    window: int = Field(60, ge=1, le=300)
    exclude: list[Pattern] = Field(default_factory=list, max_length=50)
    gate: list[GateWord] = Field(
        default_factory=list,
        max_length=200,
        description=(
            "Speed gate: the rule runs only when the text contains one of these words (lowercase letters and "
            "digits; punctuation splits words). Every match of the patterns must contain one of them."
        ),
    )

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str | GatedPattern]) -> list[str | GatedPattern]:
        _check_patterns([p for p in value if isinstance(p, str)])
        return value

    @field_validator("exclude")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)


class IdentifierDetector(_Strict):
    """A checksum-validated (or, for CRN, format-validated) identifier.

    ``evidence`` says what else must hold: ``checksum`` alone (outbound: an edit is cheap), a context
    ``keyword`` within ``window``, or ``keyword_or_grouping`` (a keyword, or digits written in groups as
    people write them), because about 1 in 11 random 9-digit strings passes the TFN check.
    """

    type: Literal["identifier"]
    kind: Literal["tfn", "medicare", "abn", "acn", "card", "crn"]
    evidence: Literal["checksum", "keyword", "keyword_or_grouping"] = "checksum"
    keywords: list[ShortText] = Field(default_factory=list, max_length=50)
    window: int = Field(50, ge=1, le=300)

    @model_validator(mode="after")
    def _keywords_when_needed(self) -> IdentifierDetector:
        if self.evidence != "checksum" and not self.keywords:
            raise ValueError(f"evidence {self.evidence!r} needs at least one keyword")
        return self


class PhoneDetector(_Strict):
    """Australian mobile and geographic numbers; service numbers (13, 1300, 1800) and ``allow`` are not."""

    type: Literal["phone"]
    allow: list[ShortText] = Field(default_factory=list, max_length=200)
    allow_service_numbers: bool = True


class EmailDetector(_Strict):
    type: Literal["email"]
    allow_domains: list[ShortText] = Field(default_factory=list, max_length=200)


class StreetAddressDetector(_Strict):
    type: Literal["street_address"]
    allow: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50
    )


class DateOfBirthDetector(_Strict):
    """A day/month/year date with a birth keyword (born, DOB, birthday...) within ``window`` characters."""

    type: Literal["date_of_birth"]
    keywords: list[ShortText] = Field(
        default_factory=lambda: ["born", "dob", "d.o.b", "date of birth", "birthday", "birth date"],
        min_length=1,
        max_length=50,
    )
    window: int = Field(40, ge=1, le=300)


class LexiconDetector(_Strict):
    """Terms matched on word boundaries, case-insensitive, with inflections (kill -> kills, killed, killing)
    and optionally disguised spellings (f*ck, sh1t). ``exclude`` patterns drop matches inside figures of
    speech ("killing me" about a form)."""

    type: Literal["lexicon"]
    terms: list[ShortText] = Field(min_length=1, max_length=500)
    inflections: bool = True
    obfuscation: bool = False
    exclude: list[Pattern] = Field(default_factory=list, max_length=50)

    @field_validator("exclude")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)


class LengthDetector(_Strict):
    """The text is longer than the platform allows."""

    type: Literal["length"]
    limits: dict[ShortText, Annotated[int, Field(ge=1, le=100_000)]] = Field(min_length=1, max_length=20)


class LinkDomainsDetector(_Strict):
    """Links whose host is not allow-listed (``*.gov.au`` style patterns), shortened, or not HTTPS."""

    type: Literal["link_domains"]
    allow: list[ShortText] = Field(min_length=1, max_length=200)
    shorteners: list[ShortText] = Field(
        default_factory=lambda: ["bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly"],
        max_length=100,
    )
    require_https: bool = True


class Window(_Strict):
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone offset")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ScheduleWindowDetector(_Strict):
    """Fires while ``mode`` is on (e.g. caretaker, set through the modes API) or ``now`` is in a window."""

    type: Literal["schedule_window"]
    mode: Mode | None = None
    windows: list[Window] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _something_to_watch(self) -> ScheduleWindowDetector:
        if self.mode is None and not self.windows:
            raise ValueError("give a mode or at least one window")
        return self


class RequiredElementDetector(_Strict):
    """When the post replied to carries one of ``when_reply_to_labels``, the reply must contain at least
    ``min_count`` of ``elements`` (e.g. two 24/7 support-service numbers in a reply to a crisis post)."""

    type: Literal["required_element"]
    when_reply_to_labels: list[ShortText] = Field(min_length=1, max_length=20)
    elements: list[Pattern] = Field(min_length=1, max_length=50)
    min_count: int = Field(1, ge=1, le=50)

    @field_validator("elements")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)


class MediaAltTextDetector(_Strict):
    """Images without useful alt text (empty, "image of...", too long) and videos without captions."""

    type: Literal["media_alt_text"]
    max_alt_length: int = Field(1000, ge=10, le=10_000)
    require_captions: bool = True


class MediaDocumentDetector(_Strict):
    """An image or GIF whose text or alt text says it shows a document or card (PI-13 without OCR: the
    pixels are not read, so a photo of a card that nobody describes is not found)."""

    type: Literal["media_document"]
    terms: list[ShortText] = Field(min_length=1, max_length=200)


class RepetitionDetector(_Strict):
    """The post is one ingest flagged as a near-duplicate of an earlier post by the same author (MOD-05)."""

    type: Literal["repetition"]


class AuthorisationDetector(_Strict):
    """The person checking a reply is not authorised for the department it is for (OUT-01): their token's
    departments do not include the request's ``department``. Services and admins are not limited."""

    type: Literal["authorisation"]


class EmbargoItem(_Strict):
    terms: list[ShortText] = Field(min_length=1, max_length=50)
    until: datetime = Field(description="Release time, with a time zone offset; the terms are free after it.")

    @field_validator("until")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("until needs a time zone offset")
        return value


class EmbargoDetector(_Strict):
    """Terms of unannounced material (a Budget measure, a decision not yet released) before their release
    time (OUT-04); the list is the agency's, added in a pack version for each embargo."""

    type: Literal["embargo"]
    items: list[EmbargoItem] = Field(min_length=1, max_length=100)


Detector = Annotated[
    RegexDetector
    | IdentifierDetector
    | PhoneDetector
    | EmailDetector
    | StreetAddressDetector
    | DateOfBirthDetector
    | LexiconDetector
    | LengthDetector
    | LinkDomainsDetector
    | ScheduleWindowDetector
    | RequiredElementDetector
    | MediaAltTextDetector
    | MediaDocumentDetector
    | RepetitionDetector
    | AuthorisationDetector
    | EmbargoDetector,
    Field(discriminator="type"),
]


class DirectionalAction(_Strict):
    inbound: Action = "allow"
    outbound: Action = "allow"


class ModeSwitch(_Strict):
    """``only_in``: the rule runs only while one of these modes is on; ``off_in``: it is off while one is."""

    only_in: list[Mode] = Field(default_factory=list, max_length=2)
    off_in: list[Mode] = Field(default_factory=list, max_length=2)


RULE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
LABEL = r"^[a-z][a-z0-9_]*(?::[a-z0-9_]+)?$"


class Rule(_Strict):
    id: str = Field(pattern=RULE_ID)
    description: str = Field(min_length=1, max_length=500)
    source: str = Field(min_length=1, max_length=500, description="The law or guidance this rule implements.")
    applies_to: Literal["inbound", "outbound", "both"]
    label: str = Field(max_length=64, pattern=LABEL)
    severity: Severity
    action: Action | DirectionalAction
    message: str = Field(min_length=1, max_length=500, description="Plain-English explanation of a finding.")
    suggestion: str | None = Field(None, max_length=500, description="How to fix it, where there is a fix.")
    redact_as: str | None = Field(
        None, max_length=40, description="Mask for redacted spans, e.g. [TFN removed]."
    )
    modes: ModeSwitch = Field(default_factory=ModeSwitch)
    visibility: Literal["public", "private"] | None = Field(
        None, description="Only for public posts or only for private messages; both when absent."
    )
    enabled: bool = True
    detector: Detector

    def action_for(self, direction: Direction) -> Action:
        if isinstance(self.action, DirectionalAction):
            return self.action.inbound if direction == "inbound" else self.action.outbound
        return self.action


class PolicyPack(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")
    version: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$")
    jurisdiction: Jurisdiction = "CTH"
    description: str = Field("", max_length=2000)
    rules: list[Rule] = Field(min_length=1, max_length=300)

    @model_validator(mode="after")
    def _unique_ids(self) -> PolicyPack:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self

    @property
    def policy_version(self) -> str:
        """The pack's identity everywhere else: ``name@version`` (at most 64 characters)."""
        return f"{self.name}@{self.version}"


class PackInvalid(Exception):
    """The document is not a valid pack; ``problems`` say where and why."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("the policy pack is not valid")
        self.problems = problems


def parse_pack(raw: str | bytes) -> PolicyPack:
    """Parse and validate a YAML or JSON pack; raises ``PackInvalid`` naming the rule and field at fault."""
    if len(raw) > MAX_PACK_BYTES:
        raise PackInvalid([FieldProblem(field="body", reason=f"a pack is at most {MAX_PACK_BYTES} bytes")])
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise PackInvalid([FieldProblem(field="body", reason=f"not valid YAML{where}")]) from exc
    if not _small_enough(document, MAX_PACK_NODES):
        # YAML aliases can make a small document describe an enormous one ("billion laughs").
        raise PackInvalid([FieldProblem(field="body", reason=f"a pack has at most {MAX_PACK_NODES} values")])
    return validate_pack(document)


def _small_enough(document: Any, limit: int) -> bool:
    """Counts values without following the same aliases forever: stops as soon as ``limit`` is passed."""
    count = 0
    stack = [document]
    while stack:
        node = stack.pop()
        count += 1
        if count > limit:
            return False
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def validate_pack(document: Any) -> PolicyPack:
    if not isinstance(document, dict):
        raise PackInvalid(
            [FieldProblem(field="body", reason="a pack is a mapping with name, version, rules")]
        )
    try:
        return PolicyPack.model_validate(document)
    except ValidationError as exc:
        raise PackInvalid(pack_problems(document, exc)) from exc


def pack_problems(document: dict[str, Any], exc: ValidationError) -> list[FieldProblem]:
    rules = document.get("rules")
    problems: list[FieldProblem] = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(rules, list):
            index = loc[1]
            raw = rules[index] if index < len(rules) else None
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            name = f"rules[{rule_id}]" if isinstance(rule_id, str) and rule_id else f"rules[{index}]"
            # Unions add the member tried to the path (detector type, literal[...], a class name); that
            # says nothing to the author of the YAML, so the path keeps only the document's own keys.
            rest = [str(p) for p in loc[2:]]
            if len(rest) >= 2 and rest[0] == "detector" and rest[1] in _DETECTOR_TYPES:
                del rest[1]
            rest = [p for p in rest if not _UNION_TAG.match(p)]
            field = ".".join([name, *rest])
        else:
            field = ".".join(str(p) for p in loc) or "body"
        reason = str(err.get("msg", "invalid"))
        for problem in problems:
            if problem.field == field:
                problem.reason = f"{problem.reason}; or {reason}"
                break
        else:
            problems.append(FieldProblem(field=field, reason=reason))
    return problems


_UNION_TAG = re.compile(r"^(?:literal\[.*\]|[A-Z][A-Za-z]+|str|int|function-\w+\[.*\])$")


_DETECTOR_TYPES = frozenset(
    {
        "regex",
        "identifier",
        "phone",
        "email",
        "street_address",
        "date_of_birth",
        "lexicon",
        "length",
        "link_domains",
        "schedule_window",
        "required_element",
        "media_alt_text",
    }
)
