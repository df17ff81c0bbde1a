"""Pure text normalisation: Unicode NFC, HTML to text, invisible characters out, whitespace folded, and the
urls, hashtags and mentions found in the result. No I/O; the same input always gives the same output."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

# Zero-width and bidi-control characters hide text from reviewers and keyword rules; they carry no meaning
# a responder needs. (U+200D ZERO WIDTH JOINER is kept: it builds emoji sequences.)
_INVISIBLE = {
    "\u200b",  # zero width space
    "\u200c",  # zero width non-joiner
    "\u2060",  # word joiner
    "\ufeff",  # byte order mark / zero width no-break space
    "\u00ad",  # soft hyphen
    "\u180e",  # mongolian vowel separator
    *(chr(c) for c in range(0x202A, 0x202F)),  # bidi embeddings and overrides
    *(chr(c) for c in range(0x2066, 0x206A)),  # bidi isolates
}
_HSPACE = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")

URL_RE = re.compile(r"\bhttps?://[^\s<>\"'\u3000]+", re.IGNORECASE)
# A hashtag starts after a non-word character, is made of letters/digits/underscore, and is not all digits.
HASHTAG_RE = re.compile(r"(?<![\w&/#])#(\w*[^\W\d]\w*)")
# @handle or @user@instance (Mastodon); e-mail addresses are not mentions (no word char before the @).
MENTION_RE = re.compile(r"(?<![\w@/.])@([A-Za-z0-9_][A-Za-z0-9_.\-]*(?:@[A-Za-z0-9.\-]+\.[A-Za-z]{2,})?)")

MAX_ENTITIES = 100
MAX_URL_CHARS = 2048
MAX_TAG_CHARS = 200


def _removal_table() -> dict[int, None]:
    """Every format (Cf) and control (Cc) code point except newline, tab and the emoji joiner, plus the
    invisibles above: a ``str.translate`` table, built once (a per-character Python check was the slowest
    step of ingest)."""
    table: dict[int, None] = {ord(ch): None for ch in _INVISIBLE}
    # Outside the BMP, format characters live only in these blocks (scanning all 1.1M code points costs
    # half a second at import; the property tests check nothing Cc/Cf survives, astral planes included).
    ranges = [(0, 0x10000), (0x11000, 0x14000), (0x1BC00, 0x1BD00), (0x1D100, 0x1D200), (0xE0000, 0xE0100)]
    for low, high in ranges:
        for code in range(low, high):
            if unicodedata.category(chr(code)) in ("Cc", "Cf"):
                table[code] = None
    for keep in ("\n", "\t", "\u200d"):
        table.pop(ord(keep), None)
    return table


_REMOVE = _removal_table()


def normalise_text(text: str) -> str:
    """NFC, invisible/control characters removed, each line's spaces folded, at most one blank line."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = text.translate(_REMOVE)
    text = _HSPACE.sub(" ", text)
    lines = [line.strip() for line in text.split("\n")]
    text = _MANY_NEWLINES.sub("\n\n", "\n".join(lines))
    # NFC again: removing a character between a base and a combining mark can create a new composition.
    return unicodedata.normalize("NFC", text.strip())


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"p", "div", "li", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "tr"})
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "a":
            href = dict(attrs).get("href")
            if href and href.lower().startswith(("http://", "https://")):
                self.links.append(href)
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _parse_html(markup: str) -> _TextExtractor:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return parser


def html_to_text(markup: str) -> str:
    """Paragraphs become newlines, entities are decoded, links keep their text (not their href)."""
    # convert_charrefs=True has already decoded entities (&amp; &#39; &nbsp;) in the text runs.
    return normalise_text("".join(_parse_html(markup).parts))


def html_links(markup: str) -> list[str]:
    """The http(s) hrefs of the markup's links, in order, without repeats."""
    return _dedupe(_parse_html(markup).links)


def _dedupe(items: list[str], *, max_chars: int = MAX_URL_CHARS) -> list[str]:
    # Over-long values are dropped, not cut: a truncated URL or handle would point somewhere else.
    return [v for v in dict.fromkeys(items) if 0 < len(v) <= max_chars][:MAX_ENTITIES]


# Each extractor first checks for the character its pattern cannot match without (most posts have no url,
# hashtag or mention, and a membership test is far cheaper than a regex scan and a dedupe).


def _without_urls(text: str) -> str:
    return URL_RE.sub(" ", text) if "://" in text else text


def extract_urls(text: str) -> list[str]:
    if "://" not in text:
        return []
    return _dedupe([m.group(0).rstrip(".,;:!?)]}'\"") for m in URL_RE.finditer(text)])


def extract_hashtags(text: str) -> list[str]:
    """Lower-cased, without '#'."""
    if "#" not in text:
        return []
    tags = [m.group(1).lower() for m in HASHTAG_RE.finditer(_without_urls(text))]
    return _dedupe(tags, max_chars=MAX_TAG_CHARS)


def extract_mentions(text: str) -> list[str]:
    """Handles without '@' (``user`` or ``user@instance``), lower-cased."""
    if "@" not in text:
        return []
    handles = [m.group(1).rstrip(".-").lower() for m in MENTION_RE.finditer(_without_urls(text))]
    return _dedupe(handles, max_chars=MAX_TAG_CHARS)


def to_utc(value: str | int | float | datetime) -> datetime:
    """A platform timestamp in any of its formats, as an aware UTC datetime.

    Accepts ISO 8601 (``Z`` or an offset), RFC 5322 / X v1.1 (``Wed Oct 10 20:19:24 +0000 2018``), Unix
    seconds, milliseconds (above 10^11) and microseconds (above 10^14, Jetstream's ``time_us``). A naive
    value is rejected: guessing its time zone would silently shift it.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        # Seconds, milliseconds (Meta's entry.time on some products) or microseconds (Jetstream's time_us).
        seconds = value / 1_000_000 if value > 1e14 else value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    elif isinstance(value, str):
        s = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", s):
            return to_utc(float(s))
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            dt = _parse_legacy(s)
    else:
        raise ValueError(f"unsupported timestamp type {type(value).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("timestamp has no time zone")
    return dt.astimezone(UTC)


def _parse_legacy(s: str) -> datetime:
    try:
        return datetime.strptime(s, "%a %b %d %H:%M:%S %z %Y")  # X API v1.1 created_at
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(s)  # RFC 5322 Date header
    except (TypeError, ValueError) as exc:
        raise ValueError(f"unrecognised timestamp {s[:40]!r}") from exc
