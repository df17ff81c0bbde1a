"""The fast engine gives exactly the findings of the engine before the speed work (``reference_engine``):
every finding (rule, label, severity, action, span, message), the redacted text, risk, priority and the
outbound decision, over the labelled corpus, the held-out sets, the benchmark's posts and generated texts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.policy import engine
from services.policy.service import default_pack
from tests.policy import reference_engine as reference

NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
DATA = Path(__file__).parents[1] / "data" / "policy"
# Letters of the lexicons, digits and separators of identifiers, look-alikes, and characters whose case
# folds onto ASCII letters (Kelvin sign, long s) or that lowercase to two characters.
ALPHABET = "abcdefhiklmnoprstuy0123456789 -/@.*$!|'\u2019\u00e9K\u212aS\u017f\u0130"


@cache
def packs() -> tuple[engine.CompiledPack, reference.CompiledPack]:
    fast = default_pack()
    return fast, reference.compile_pack(fast.pack)


def _finding(f: engine.Finding | reference.Finding) -> tuple[object, ...]:
    return (f.rule_id, f.label, f.severity, f.action, f.start, f.end, f.message, f.suggestion, f.source)


def _contexts() -> Iterator[tuple[engine.Context, reference.Context]]:
    media = (engine.MediaItem(type="image", alt_text="photo of my medicare card"),)
    ref_media = (reference.MediaItem(type="image", alt_text="photo of my medicare card"),)
    for direction in ("inbound", "outbound"):
        for modes in (frozenset(), frozenset({"caretaker", "crisis"})):
            yield (
                engine.Context(direction=direction, now=NOW, platform="x", active_modes=modes),
                reference.Context(direction=direction, now=NOW, platform="x", active_modes=modes),
            )
    yield (
        engine.Context(direction="inbound", now=NOW, platform="x", media=media, visibility="private"),
        reference.Context(direction="inbound", now=NOW, platform="x", media=ref_media, visibility="private"),
    )
    video = (engine.MediaItem(type="video", alt_text="photo of my medicare card"),)
    ref_video = (reference.MediaItem(type="video", alt_text="photo of my medicare card"),)
    yield (
        engine.Context(direction="inbound", now=NOW, platform="x", media=video, duplicate=True),
        reference.Context(direction="inbound", now=NOW, platform="x", media=ref_video, duplicate=True),
    )
    yield (
        engine.Context(direction="outbound", now=NOW, platform="x", media=media, duplicate=True),
        reference.Context(direction="outbound", now=NOW, platform="x", media=ref_media, duplicate=True),
    )


def assert_same(text: str) -> None:
    fast, ref = packs()
    for ctx, ref_ctx in _contexts():
        if ctx.direction == "inbound":
            got, want = engine.screen(fast, text, ctx), reference.screen(ref, text, ref_ctx)
            assert [_finding(f) for f in got.findings] == [_finding(f) for f in want.findings], text
            assert (got.labels, got.risk, got.priority, got.redacted_text, got.crisis, got.failed_rules) == (
                want.labels,
                want.risk,
                want.priority,
                want.redacted_text,
                want.crisis,
                want.failed_rules,
            ), text
        else:
            out, ref_out = engine.check(fast, text, ctx), reference.check(ref, text, ref_ctx)
            assert [_finding(f) for f in out.findings] == [_finding(f) for f in ref_out.findings], text
            assert (out.decision, out.failed_rules) == (ref_out.decision, ref_out.failed_rules), text


def _texts(name: str) -> list[str]:
    return [json.loads(line)["text"] for line in (DATA / name).read_text().splitlines()[1:]]


class TestSameFindingsAsTheReferenceEngine:
    @pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.jsonl")))
    def test_the_corpus_and_every_held_out_set(self, name):
        texts = _texts(name)
        assert texts
        for text in texts:
            assert_same(text)
            # Case and non-ASCII change which path a text takes: the same posts shouted and accented.
            assert_same(text.upper())
            assert_same(text.replace("e", "\u00e9", 2))

    def test_the_benchmark_posts(self):
        from bench.policy import tweets

        for text in tweets(600) + tweets(600, ordinary=True):
            assert_same(text)

    def test_posts_joined_and_cut_where_words_and_numbers_meet(self):
        texts = _texts("corpus.jsonl") + _texts("heldout.jsonl")
        for a, b in zip(texts, texts[7:], strict=False):
            assert_same(f"{a}{b}")
            assert_same(f"{a[: len(a) // 2]}{b[len(b) // 3 :]}")

    @settings(max_examples=400, deadline=None)
    @given(
        st.lists(
            st.one_of(
                st.sampled_from(_texts("corpus.jsonl") + _texts("heldout2.jsonl")),
                st.text(alphabet=ALPHABET, max_size=40),
                st.text(max_size=20),
            ),
            max_size=4,
        )
    )
    def test_generated_texts(self, parts):
        assert_same(" ".join(parts))

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=300))
    def test_any_text(self, text):
        assert_same(text)


class TestLowercaseTwins:
    def test_the_non_ascii_characters_that_fold_onto_ascii_are_all_known(self):
        every = "".join(chr(c) for c in range(128, 0x110000) if not 0xD800 <= c < 0xE000)
        folding = {ord(m.group()) for m in re.finditer("[\x00-\x7f]", every, re.IGNORECASE)}
        assert folding == engine.FOLDS_TO_ASCII

    @pytest.mark.parametrize(
        "pattern",
        [
            r"\bminister for [A-Z][a-z]+",
            r"\bK\b",
            r"caf\u00e9|\u212a",
            r"[\u0100-\u0200]x",
            r"(?i:ab)c",
            r"(?-i:ab)c",
            r"[!-~]",
            r"ab\x41",
        ],
    )
    def test_a_pattern_with_case_in_it_keeps_running_case_insensitively(self, pattern):
        assert engine._lowercase_twin(re.compile(pattern, re.IGNORECASE)) is None

    def test_a_case_sensitive_pattern_has_no_twin(self):
        assert engine._lowercase_twin(re.compile(r"abc")) is None

    @pytest.mark.parametrize(
        "pattern",
        [
            r"\b(?:he|she)(?:['\u2019]?ll)? (?:hit|hurt)s? (?:me|us)\b",
            r"(?<![\w@#*$])(?=[fs](?=[a-z*@$!|013457]{3})[a-z]*[*@$!|013457])",
            r"(?P<w>[a-z]+) (?P=w)",
            r"[^.!?]{0,40}\bme\b",
        ],
    )
    def test_a_twin_finds_the_same_spans_in_any_case(self, pattern):
        slow = re.compile(pattern, re.IGNORECASE)
        twin = engine._lowercase_twin(slow)
        assert twin is not None
        for text in ["He'll HIT me", "so the the cat", "F*ck sh!t", "Family violence: help ME", "x y"]:
            assert [m.span() for m in twin.finditer(text.lower())] == [m.span() for m in slow.finditer(text)]


def _pack_patterns() -> list[engine._Rx]:
    """Every pattern object the default pack's rules hold (in their closures), found by walking them."""
    found: dict[int, engine._Rx] = {}

    def walk(value: object, depth: int = 0) -> None:
        if isinstance(value, engine._Rx):
            found[id(value)] = value
        elif isinstance(value, list | tuple) and depth < 3:
            for item in value:
                walk(item, depth + 1)
        elif callable(value) and getattr(value, "__closure__", None) and depth < 3:
            for cell in value.__closure__ or ():
                walk(cell.cell_contents, depth + 1)

    for cr in packs()[0].rules:
        walk(cr.find)
    return list(found.values())


VOCABULARY = [
    "he",
    "she",
    "my",
    "partner",
    "ex",
    "ex's",
    "he's",
    "hit",
    "hits",
    "hurt",
    "hurts",
    "me",
    "us",
    "here",
    "here's",
    "is",
    "her",
    "his",
    "home",
    "address",
    "number",
    "tax",
    "file",
    "tfn",
    "Labor",
    "Liberal",
    "Day",
    "kill",
    "myself",
    "go",
    "away",
    "home",
    "now",
    "stop",
    "it",
    "-",
    "x'",
]
PREFILTER_PATTERNS = [
    r"\b(?:he|she|my (?:partner|ex))(?:['\u2019]?s)? (?:\w+ ){0,2}?(?:hit|hurt)s? (?:me|us)\b",
    r"(?<![a-z0-9])(?:tax file number|tfn)(?![a-z0-9])",
    r"\bhere(?:'s| is) (?:her|his) (?:home )?(?:address|number)\b",
    r"\b(?:Labor|Liberal)\b(?! Day)",
    r"(?:kill|hurt)[\s\-]+(?:myself|me)(?![\w*])",
    r"\bgo (?:away|home)+ now\b|\bstop it\b",
]


class TestPrefilters:
    def test_the_pack_has_prefilters_and_they_never_hide_a_match_in_the_data(self):
        rxs = _pack_patterns()
        assert sum(1 for rx in rxs if rx.need_words or rx.need_strings) > 50
        texts = [t for name in sorted(p.name for p in DATA.glob("*.jsonl")) for t in _texts(name)]
        for text in texts + [t.upper() for t in texts]:
            t = engine._Text(text)
            for rx in rxs:
                if rx.on(t) is None:
                    assert rx.slow.search(text) is None, (rx.slow.pattern, text)

    @pytest.mark.parametrize("pattern", PREFILTER_PATTERNS)
    @settings(max_examples=150, deadline=None)
    @given(
        words=st.lists(
            st.sampled_from(VOCABULARY),
            max_size=10,
        ),
        glue=st.sampled_from([" ", "-", "", "_", ". ", "'"]),
    )
    def test_a_prefilter_never_hides_a_match(self, pattern, words, glue):
        for flags in (0, re.IGNORECASE):
            rx = engine._Rx(re.compile(pattern, flags))
            for text in (glue.join(words), glue.join(words).upper()):
                if rx.on(engine._Text(text)) is None:
                    assert rx.slow.search(text) is None, text

    def test_whole_words_are_taken_only_where_a_word_cannot_run_on(self):
        rx = engine._Rx(re.compile(r"\bmy (?:partner|ex)s? (?:hit|hurt) me\b", re.IGNORECASE))
        assert frozenset({"partner", "partners", "ex", "exs"}) in rx.need_words
        assert rx.on(engine._Text("my friend hit me")) is None
        assert rx.on(engine._Text("My partners hit me")) is not None


class TestFastFinding:
    def test_a_finding_built_fast_is_the_finding_the_constructor_builds(self):
        fields: dict[str, object] = {
            "rule_id": "PI-01",
            "label": "tfn",
            "severity": "high",
            "action": "redact",
            "start": 3,
            "end": 14,
            "message": "m",
            "suggestion": None,
            "source": "s",
        }
        fast, slow = engine._finding(fields), engine.Finding(**fields)  # type: ignore[arg-type]
        assert fast == slow
        assert hash(fast) == hash(slow)
        assert repr(fast) == repr(slow)
        assert fast.as_dict() == slow.as_dict() == fields


class TestDisguisedShape:
    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet="abfs hit!|*@$0137_#-.", max_size=40))
    def test_the_first_shape_is_where_the_shape_pattern_first_matches(self, raw):
        shapes = engine._disguise_shapes(set("bfs"))
        text = engine._Text(raw)
        shape = re.search(rb"[ e]f[af]*[de]", b" " + text.ascii_bytes.translate(shapes))
        assert engine._disguised_shape(text, shapes) == (None if shape is None else shape.start())
