"""Text normalisation rules, with hypothesis for the properties that must hold for any input."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.normalise.text import (
    HASHTAG_RE,
    MAX_TAG_CHARS,
    MENTION_RE,
    URL_RE,
    _dedupe,
    extract_hashtags,
    extract_mentions,
    extract_urls,
    html_links,
    html_to_text,
    normalise_text,
    to_utc,
)

INVISIBLE = ["\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u2066", "\x00", "\x07", "\x1b"]
any_text = st.text(max_size=300)


class TestNormaliseTextProperties:
    @given(any_text)
    @settings(max_examples=300)
    def test_is_idempotent(self, text: str) -> None:
        once = normalise_text(text)
        assert normalise_text(once) == once

    @given(any_text)
    @settings(max_examples=300)
    def test_output_is_nfc(self, text: str) -> None:
        out = normalise_text(text)
        assert unicodedata.is_normalized("NFC", out)

    @given(any_text)
    @settings(max_examples=300)
    def test_no_invisible_or_control_characters_survive(self, text: str) -> None:
        out = normalise_text(text)
        for ch in out:
            assert ch == "\n" or ch == "\u200d" or unicodedata.category(ch) not in ("Cc", "Cf"), repr(ch)

    @given(any_text)
    @settings(max_examples=300)
    def test_whitespace_is_folded(self, text: str) -> None:
        out = normalise_text(text)
        assert out == out.strip()
        assert "  " not in out
        assert "\n\n\n" not in out
        assert "\t" not in out
        assert all(line == line.strip() for line in out.split("\n"))

    @given(
        st.text(alphabet=st.characters(categories=("L", "N")), min_size=1, max_size=50),
        st.sampled_from(INVISIBLE),
    )
    def test_invisible_characters_inside_a_word_are_removed(self, word: str, invisible: str) -> None:
        out = normalise_text(word[:1] + invisible + word[1:])
        assert out == unicodedata.normalize("NFC", word)

    @given(any_text)
    def test_html_to_text_of_escaped_text_is_the_normalised_text(self, text: str) -> None:
        import html

        assert html_to_text(html.escape(text)) == normalise_text(text)


class TestNormaliseTextExamples:
    def test_decomposed_accents_are_composed(self) -> None:
        assert normalise_text("Cafe\u0301") == "Café"

    def test_lines_and_paragraphs(self) -> None:
        assert normalise_text("  a \t b \r\n\r\n\r\n\r\n c  ") == "a b\n\nc"


class TestHtmlToText:
    def test_paragraphs_become_newlines_entities_decode_and_links_keep_their_text(self) -> None:
        markup = (
            '<p>Road &amp; bridge&nbsp;closed</p><p>See <a href="https://x.example/a">the map</a><br>now</p>'
        )
        assert html_to_text(markup) == "Road & bridge closed\n\nSee the map\nnow"
        assert html_links(markup) == ["https://x.example/a"]

    def test_script_and_style_are_dropped(self) -> None:
        assert html_to_text("<style>p{}</style><p>hi</p><script>alert(1)</script>") == "hi"


class TestEntities:
    def test_urls_hashtags_mentions(self) -> None:
        text = "@Council see https://a.example/x?y=1, #Roads #roads #2026 me@home.example @bob@masto.example"
        assert extract_urls(text) == ["https://a.example/x?y=1"]
        assert extract_hashtags(text) == ["roads"]
        assert extract_mentions(text) == ["council", "bob@masto.example"]

    def test_a_url_fragment_is_not_a_hashtag(self) -> None:
        assert extract_hashtags("https://a.example/page#section") == []

    @given(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True))
    def test_hashtags_are_lower_case_without_the_sign(self, tag: str) -> None:
        assert extract_hashtags(f"about #{tag} today") == [tag.lower()]

    @given(st.lists(st.sampled_from(["#", "@", "://", "http", "https://a.example/", " ", "x", "Ab_1", "."])))
    @settings(max_examples=300)
    def test_the_shortcuts_find_what_the_patterns_find(self, parts: list[str]) -> None:
        # The extractors skip their scan when the text lacks '://', '#' or '@': the patterns on their own
        # (with every url removed before hashtags and mentions) must find exactly the same.
        text = "".join(parts)
        without_urls = URL_RE.sub(" ", text)
        assert extract_urls(text) == _dedupe(
            [m.group(0).rstrip(".,;:!?)]}'\"") for m in URL_RE.finditer(text)]
        )
        assert extract_hashtags(text) == _dedupe(
            [m.group(1).lower() for m in HASHTAG_RE.finditer(without_urls)], max_chars=MAX_TAG_CHARS
        )
        assert extract_mentions(text) == _dedupe(
            [m.group(1).rstrip(".-").lower() for m in MENTION_RE.finditer(without_urls)],
            max_chars=MAX_TAG_CHARS,
        )


class TestToUtc:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2026-11-25T22:00:00.000Z", datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
            ("2026-11-26T09:00:00+11:00", datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
            ("Wed Nov 25 22:00:00 +0000 2026", datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
            ("Thu, 26 Nov 2026 09:00:00 +1100", datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
            (1795644000, datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
            (1795644000.0, datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
            ("1795644000", datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
            (1795644000_000, datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
            (1795644000_000_000, datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
        ],
    )
    def test_platform_formats(self, value: object, expected: datetime) -> None:
        result = to_utc(value)  # type: ignore[arg-type]
        assert result == expected
        assert result.utcoffset() == timedelta(0)

    def test_naive_timestamps_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="time zone"):
            to_utc("2026-11-25T22:00:00")

    @given(
        st.datetimes(
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=11)), timezone(timedelta(hours=-5))])
        )
    )
    def test_any_aware_iso_timestamp_keeps_its_instant(self, dt: datetime) -> None:
        assert to_utc(dt.isoformat()) == dt
