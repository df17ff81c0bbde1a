"""The optimised engine gives exactly the results of the plain definition of the rules
(``compile_pack(pack, optimised=False)``: every rule runs, every pattern as written on the whole text): every
finding (rule, label, severity, action, span, message), the redacted text, risk, priority and the outbound
decision, over the labelled corpus, the held-out sets, the benchmark's posts and generated texts. A golden
snapshot of the corpus's results (tests/data/policy/findings.snapshot.json) anchors both against drift;
after a deliberate change of rule behaviour, regenerate it and review the diff:

    .venv/bin/python -m tests.policy.test_equivalence --update
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.policy import engine
from services.policy.service import default_pack

NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
DATA = Path(__file__).parents[1] / "data" / "policy"
SNAPSHOT = DATA / "findings.snapshot.json"
# Letters of the lexicons, digits and separators of identifiers, look-alikes, and characters whose case
# folds onto ASCII letters (Kelvin sign, long s, dotless i) or that lowercase to two characters (dotted I).
ALPHABET = "abcdefhiklmnoprstuy0123456789 -/@.*$!|'\u2019\u00e9K\u212aS\u017f\u0130\u0131"
# Letters that a case-insensitive pattern reads as ASCII letters, and the digits of another script (\\d
# matches them): the regular expressions see letters and digits where the cheap word and digit tests may not.
FOLDED = str.maketrans({"s": "\u017f", "k": "\u212a", "i": "\u0131", "I": "\u0130"})
OTHER_DIGITS = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")
# Digits of other scripts (\d matches them), letters of other scripts, a combining mark, an emoji.
ODD = "\u0661\u0662\u0663\u0664\u0665\u0666\u0967\u0968\uff11\u00df\u00c0\u03a3\u0301\U0001f600"
ODD += "\u00a0\u2028\u200b"


@cache
def packs() -> tuple[engine.CompiledPack, engine.CompiledPack]:
    """The optimised default pack and the plain definition of the same rules."""
    optimised = default_pack()
    return optimised, engine.compile_pack(optimised.pack, optimised=False)


def _contexts() -> dict[str, engine.Context]:
    card = (engine.MediaItem(type="image", alt_text="photo of my medicare card"),)
    video = (engine.MediaItem(type="video", alt_text="photo of my medicare card"),)
    modes = frozenset({"caretaker", "crisis"})
    inbound = engine.Context(direction="inbound", now=NOW, platform="x")
    outbound = engine.Context(direction="outbound", now=NOW, platform="x")
    return {
        "in": inbound,
        "in+modes": replace(inbound, active_modes=modes),
        "in+image": replace(inbound, media=card, visibility="private"),
        "in+video+dup": replace(inbound, media=video, duplicate=True),
        "out": outbound,
        "out+modes": replace(outbound, active_modes=modes),
        "out+private+modes+media": replace(
            outbound, visibility="private", active_modes=modes, media=card + video, duplicate=True
        ),
    }


CONTEXTS = _contexts()
# Every rule that reads the text runs in one of these (rules switched on and off by modes, public and private
# replies): the variants of a text are compared in them only, to keep the test quick.
QUICK = ("in", "in+modes", "out", "out+private+modes+media")


def _finding(f: engine.Finding) -> list[object]:
    return [f.rule_id, f.label, f.severity, f.action, f.start, f.end, f.message, f.suggestion, f.source]


# The contexts of the snapshot: those in which the text decides (the others add the same findings to all).
SNAPSHOT_CONTEXTS = ("in", "in+modes", "in+image", "out", "out+private+modes+media")


def results(
    pack: engine.CompiledPack, text: str, contexts: tuple[str, ...] = tuple(CONTEXTS)
) -> dict[str, dict[str, Any]]:
    """Everything a caller sees of ``text`` in each context: the screening (inbound) or check (outbound)."""
    out: dict[str, dict[str, Any]] = {}
    for name in contexts:
        ctx = CONTEXTS[name]
        if ctx.direction == "inbound":
            s = engine.screen(pack, text, ctx)
            out[name] = {
                "findings": [_finding(f) for f in s.findings],
                "labels": s.labels,
                "risk": s.risk,
                "priority": s.priority,
                "redacted_text": s.redacted_text,
                "crisis": s.crisis,
                "failed_rules": s.failed_rules,
            }
        else:
            c = engine.check(pack, text, ctx)
            out[name] = {
                "findings": [_finding(f) for f in c.findings],
                "decision": c.decision,
                "failed_rules": c.failed_rules,
            }
    return out


def assert_same(text: str, contexts: tuple[str, ...] = tuple(CONTEXTS)) -> None:
    optimised, plain = packs()
    assert results(optimised, text, contexts) == results(plain, text, contexts), text


def _items(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()[1:]]


def _texts(name: str) -> list[str]:
    return [item["text"] for item in _items(name)]


DATA_FILES = sorted(p.name for p in DATA.glob("*.jsonl"))


@cache
def _pack_words() -> list[str]:
    """The words and phrases the default pack's rules look for: lexicon terms, keywords, gate words."""
    words: set[str] = set()
    for rule in default_pack().pack.rules:
        d = rule.detector
        for name in ("terms", "keywords", "gate", "elements"):
            words.update(w for w in getattr(d, name, None) or () if isinstance(w, str) and "\\" not in w)
        words.update(w for p in getattr(d, "patterns", None) or () if not isinstance(p, str) for w in p.gate)
    return sorted(words)


# What the gates and shortcuts look for besides words: links with and without a path, addresses, numbers
# in groups, dates, and the characters before a disguised word.
FEATURES = [
    "www.example.com",
    "www.bit.ly",
    "http://x.io",
    "https://bit.ly/x",
    "example.org/a",
    "a@example.com",
    "@",
    "/",
    "12 Smith Street",
    "3/14 Ocean Pde",
    "0491 570 156",
    "(02) 5550 1234",
    "770 914 535",
    "51 824 753 556",
    "2123 45670 1",
    "12/03/1985",
    "3rd March 1990",
    "!",
    "|",
    "#",
    "$",
    "*",
]
LOOKALIKES = {"a": "@4*", "e": "3*", "i": "1!*|", "o": "0*", "u": "*", "s": "$5", "t": "7", "l": "1|"}


@st.composite
def _disguised(draw: st.DrawFn) -> str:
    """A word or feature of the pack, perhaps with look-alikes, folding letters or in capitals."""
    word = draw(st.sampled_from(_pack_words() + FEATURES))
    chars = list(word)
    for i, c in enumerate(chars):
        if i and c in LOOKALIKES and draw(st.integers(0, 3)) == 0:
            chars[i] = draw(st.sampled_from(LOOKALIKES[c]))
    word = "".join(chars)
    how = draw(st.sampled_from(["as is", "upper", "title", "folded"]))
    if how == "upper":
        return word.upper()
    if how == "title":
        return word.title()
    return word.translate(FOLDED) if how == "folded" else word


class TestOptimisedIsThePlainDefinition:
    @pytest.mark.parametrize("name", DATA_FILES)
    def test_the_corpus_and_every_held_out_set(self, name):
        texts = _texts(name)
        assert texts
        for text in texts:
            assert_same(text)
            # Case and non-ASCII change which path a text takes: the same posts shouted and accented.
            assert_same(text.upper(), QUICK)
            assert_same(text.replace("e", "\u00e9", 2), QUICK)
            assert_same(text.translate(FOLDED), QUICK)
            assert_same(text.translate(OTHER_DIGITS), QUICK)

    def test_the_benchmark_posts(self):
        from bench.policy import tweets

        for text in tweets(200) + tweets(200, ordinary=True):
            assert_same(text, QUICK)

    def test_posts_joined_and_cut_where_words_and_numbers_meet(self):
        texts = _texts("corpus.jsonl") + _texts("heldout.jsonl")
        for a, b in zip(texts, texts[7:], strict=False):
            assert_same(f"{a}{b}", QUICK)
            assert_same(f"{a[: len(a) // 2]}{b[len(b) // 3 :]}", QUICK)

    @settings(max_examples=400, deadline=None)
    @given(
        st.lists(
            st.one_of(
                st.sampled_from(_texts("corpus.jsonl") + _texts("heldout2.jsonl")),
                st.text(alphabet=ALPHABET, max_size=40),
                st.text(alphabet=ALPHABET + ODD, max_size=20),
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

    @settings(max_examples=500, deadline=None)
    @given(
        st.lists(_disguised(), min_size=1, max_size=6),
        st.lists(
            st.sampled_from([" ", "", "!", "|", "-", ".", "#", "x", "_", "'", " the ", "\u00e9"]), min_size=1
        ),
    )
    def test_words_of_the_pack_disguised_and_glued(self, words, glue):
        text = words[0]
        for i, word in enumerate(words[1:]):
            text += glue[i % len(glue)] + word
        assert_same(text, QUICK)

    @pytest.mark.parametrize(
        "text",
        [
            "I want to kill my\u017felf",  # long s: a case-insensitive "s"
            "I want to \u212aill myself",  # Kelvin sign: "k"
            "I want to k\u0130ll myself",  # dotted capital I: lowercases to two characters
            "I want to k\u0131ll myself",  # dotless i
            "\u017fhit",
            "\u0661\u0662 Smith Street",  # Arabic-Indic digits are \\d
        ],
    )
    def test_letters_and_digits_of_other_scripts(self, text):
        assert_same(text)
        assert results(packs()[0], text)["in"]["findings"]

    def test_the_plain_pack_is_the_plain_definition(self):
        optimised, plain = packs()
        assert optimised.optimised
        assert not plain.optimised
        assert all(cr.gate is None for cr in plain.rules)
        assert any(cr.gate is not None for cr in optimised.rules)


def snapshot(pack: engine.CompiledPack) -> dict[str, Any]:
    """The results of every text of the corpus and the held-out sets, compact: each rule's fixed fields
    once, a finding as rule, action, span and the detail added to the rule's message (if any), a redacted
    text only where it differs from the text (else None)."""
    rules = {
        r.id: {
            "label": r.label,
            "severity": r.severity,
            "message": r.message,
            "suggestion": r.suggestion,
            "source": r.source,
        }
        for r in pack.pack.rules
    }
    texts: dict[str, Any] = {}
    for name in DATA_FILES:
        for item in _items(name):
            key = f"{Path(name).stem}/{item['id']}"
            assert key not in texts, key
            per_context = results(pack, item["text"], SNAPSHOT_CONTEXTS)
            for result in per_context.values():
                result["findings"] = [_compact(f, rules[f[0]]) for f in result["findings"]]
                if result.get("redacted_text") == item["text"]:
                    result["redacted_text"] = None
            texts[key] = per_context
    return {"policy_version": pack.policy_version, "rules": rules, "texts": texts}


def _compact(finding: list[Any], rule: dict[str, Any]) -> list[Any]:
    rule_id, label, severity, action, start, end, message, suggestion, source = finding
    if (label, severity, suggestion, source) != (
        rule["label"],
        rule["severity"],
        rule["suggestion"],
        rule["source"],
    ):
        return finding  # never so today: kept whole rather than lost
    # A hit's detail is appended to the rule's message in parentheses: keep the detail, or the whole message.
    if message == rule["message"]:
        return [rule_id, action, start, end]
    prefix = f"{rule['message']} ("
    detail = message[len(prefix) : -1] if message.startswith(prefix) and message.endswith(")") else message
    return [rule_id, action, start, end, detail]


def _dump(snap: dict[str, Any]) -> str:
    """One line per rule and per text, so a change of behaviour is a readable diff."""

    def block(items: dict[str, Any]) -> str:
        return ",\n".join(
            f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, sort_keys=True)}"
            for k, v in items.items()
        )

    return (
        f'{{\n"policy_version": {json.dumps(snap["policy_version"])},\n'
        f'"rules": {{\n{block(snap["rules"])}\n}},\n"texts": {{\n{block(snap["texts"])}\n}}\n}}\n'
    )


class TestGoldenSnapshot:
    def test_the_results_are_the_snapshot(self):
        want = json.loads(SNAPSHOT.read_text())
        # The optimised pack; the plain one gives the same results (the tests above).
        got = snapshot(packs()[0])
        assert got["rules"] == want["rules"]
        changed = sorted(
            k
            for k in want["texts"].keys() | got["texts"].keys()
            if got["texts"].get(k) != want["texts"].get(k)
        )
        # A deliberate change: `python -m tests.policy.test_equivalence --update` and review the diff.
        assert not changed, changed[:20]
        assert got["policy_version"] == want["policy_version"]

    def test_the_snapshot_file_is_what_update_writes(self):
        assert SNAPSHOT.read_text() == _dump(json.loads(SNAPSHOT.read_text()))


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--update", action="store_true", help=f"rewrite {SNAPSHOT.name} from the current engine"
    )
    args = parser.parse_args()
    optimised, plain = packs()
    current = snapshot(optimised)
    if snapshot(plain) != current:
        raise SystemExit("the optimised and the plain engine disagree on the corpus: fix that first")
    old = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {"texts": {}}
    changed = [
        k
        for k in current["texts"].keys() | old["texts"].keys()
        if current["texts"].get(k) != old["texts"].get(k)
    ]
    print(f"{len(current['texts'])} texts, {len(changed)} changed: {sorted(changed)[:20]}")
    if args.update:
        SNAPSHOT.write_text(_dump(current))
        print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main()
