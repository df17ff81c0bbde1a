"""The pack format and the engine: pure, no I/O."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.policy import checksums, engine
from services.policy.pack import PackInvalid, parse_pack
from services.policy.service import DEFAULT_PACK_PATH, default_pack

NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
CORPUS = Path(__file__).parents[1] / "data" / "policy" / "corpus.jsonl"


def inbound(text: str, **kw: object) -> engine.Screening:
    return engine.screen(default_pack(), text, engine.Context(direction="inbound", now=NOW, **kw))  # type: ignore[arg-type]


def outbound(text: str, **kw: object) -> engine.CheckResult:
    ctx = engine.Context(direction="outbound", now=NOW, platform=kw.pop("platform", "x"), **kw)  # type: ignore[arg-type]
    return engine.check(default_pack(), text, ctx)


def labels(result: engine.Screening | engine.CheckResult) -> set[str]:
    return {f.label for f in result.findings}


MINIMAL = """
name: t
version: "1"
rules:
  - id: R-1
    description: d
    source: s
    applies_to: both
    label: spam
    severity: low
    action: warn
    message: m
    detector: {type: regex, patterns: ['casino']}
"""


class TestPackFormat:
    def test_the_default_pack_implements_at_least_30_catalogue_checks(self):
        pack = parse_pack(DEFAULT_PACK_PATH.read_bytes())
        checks = {
            m.group()
            for r in pack.rules
            if (m := re.match(r"(PI|SAFE|MOD|SENS|OUT|REC|SLA)-\d+", r.id)) is not None
        }
        assert len(checks) >= 30, sorted(checks)
        assert all(r.source and r.message for r in pack.rules)

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            (("patterns: ['casino']", "patterns: ['(casino']"), "rules[R-1].detector.patterns"),
            (("severity: low", "severity: awful"), "rules[R-1].severity"),
            (("action: warn", "action: delete"), "rules[R-1].action"),
            (("type: regex, patterns: ['casino']", "type: telepathy"), "rules[R-1].detector"),
            (("    message: m\n", ""), "rules[R-1].message"),
            (("label: spam", "label: Not A Label"), "rules[R-1].label"),
            (("patterns: ['casino']", "patterns: ['(a+)+$']"), "rules[R-1].detector.patterns"),
            (("patterns: ['casino']", "patterns: ['(?:\\w+\\s*)*end']"), "rules[R-1].detector.patterns"),
            (
                ("type: regex, patterns: ['casino']", "type: identifier, kind: tfn, evidence: keyword"),
                "rules[R-1].detector",
            ),
        ],
    )
    def test_an_invalid_rule_is_reported_by_rule_id_and_field(self, change, field):
        with pytest.raises(PackInvalid) as exc:
            parse_pack(MINIMAL.replace(*change))
        assert field in {p.field for p in exc.value.problems}, exc.value.problems

    def test_a_duplicate_rule_id_is_rejected(self):
        doc = MINIMAL + MINIMAL.split("rules:\n", 1)[1]
        with pytest.raises(PackInvalid) as exc:
            parse_pack(doc)
        assert "used twice" in exc.value.problems[0].reason

    @pytest.mark.parametrize("raw", ["rules: [unclosed", "- just a list", "x" * 300_000])
    def test_broken_documents_are_problems_not_errors(self, raw):
        with pytest.raises(PackInvalid) as exc:
            parse_pack(raw)
        assert exc.value.problems[0].field == "body"

    def test_an_alias_bomb_is_refused_before_validation(self):
        bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for i in range(1, 9):
            bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
        with pytest.raises(PackInvalid) as exc:
            parse_pack(bomb)
        assert "at most" in exc.value.problems[0].reason

    def test_json_is_accepted_too(self):
        import yaml

        pack = parse_pack(json.dumps(yaml.safe_load(MINIMAL)))
        assert pack.policy_version == "t@1"


class TestIdentifiers:
    @settings(deadline=None)
    @given(st.text(alphabet="0123456789", min_size=8, max_size=8), st.sampled_from([" ", "-", ""]))
    def test_every_valid_tfn_is_detected_with_its_keyword_and_redacted(self, base, sep):
        check = checksums.tfn_check_digit(base)
        if check is None:
            return
        tfn = base + check
        written = sep.join([tfn[:3], tfn[3:6], tfn[6:]])
        result = inbound(f"Hi, my TFN is {written} thanks")
        assert "pii:tfn" in labels(result)
        assert written not in result.redacted_text
        assert "pii:tfn" in labels(outbound(f"Your TFN {written} is linked"))

    @settings(deadline=None)
    @given(st.text(alphabet="0123456789", min_size=9, max_size=9), st.integers(0, 8), st.integers(1, 9))
    def test_a_tfn_with_one_digit_changed_is_not_a_tfn(self, value, index, delta):
        if not checksums.tfn_valid(value):
            return
        mutated = value[:index] + str((int(value[index]) + delta) % 10) + value[index + 1 :]
        assert "pii:tfn" not in labels(outbound(f"Reference {mutated} for your case"))

    @settings(deadline=None)
    @given(st.integers(2, 6), st.text(alphabet="0123456789", min_size=7, max_size=7), st.integers(1, 9))
    def test_every_valid_medicare_number_is_detected(self, first, rest, issue):
        base = f"{first}{rest}"
        number = base + checksums.medicare_check_digit(base) + str(issue)
        written = f"{number[:4]} {number[4:9]} {number[9]}"
        assert "pii:medicare" in labels(inbound(f"Medicare card {written}, claim rejected"))

    @settings(deadline=None)
    @given(st.text(alphabet="0123456789", min_size=9, max_size=9))
    def test_an_abn_is_a_business_id_and_never_a_tfn(self, base):
        abn = checksums.abn_from_base(base)
        written = f"{abn[:2]} {abn[2:5]} {abn[5:8]} {abn[8:]}"
        got = labels(inbound(f"Our ABN is {written}, TFN questions later"))
        assert "business_id:abn" in got
        assert "pii:tfn" not in got

    @settings(deadline=None)
    @given(st.text(alphabet="0123456789", min_size=15, max_size=15))
    def test_every_luhn_card_number_is_detected(self, partial):
        card = partial + checksums.luhn_check_digit(partial)
        if card[0] == "0":
            return
        written = " ".join(card[i : i + 4] for i in range(0, 16, 4))
        assert "pii:card" in labels(outbound(f"Refund to card {written}"))

    @pytest.mark.parametrize(
        "text",
        [
            "The grant was $1,234,567 last year",
            "Call Lifeline on 13 11 14 or 1800 551 800",
            "Booking ref 482913775, can I change it?",
            "Invoice INV-20931 and REF-2024-118392",
        ],
    )
    def test_money_service_numbers_and_references_are_not_personal_information(self, text):
        assert not {label for label in labels(inbound(text)) if label.startswith("pii:")}

    def test_public_service_numbers_may_be_published_but_a_mobile_may_not(self):
        assert outbound("Call Lifeline on 13 11 14 or us on 1300 659 467").decision == "allow"
        assert outbound("We called you on 0491 570 006").decision == "block"


class TestLexicon:
    @pytest.mark.parametrize(
        ("word", "form"),
        [
            ("kill", "killing"),
            ("die", "dying"),
            ("stab", "stabbing"),
            ("hurry", "hurried"),
            ("end", "ending"),
        ],
    )
    def test_inflections(self, word, form):
        assert form in engine.inflections(word)

    @pytest.mark.parametrize(
        ("text", "hit"),
        [
            ("I keep thinking about ending my life", True),
            ("I've been self-harming again", True),
            ("i dont want to be here anymore", True),
            ("Suicide prevention week events?", False),
            ("I could die of embarrassment", False),
            ("This form is killing me", False),
        ],
    )
    def test_crisis_terms_match_on_word_boundaries_with_inflections_not_figures_of_speech(self, text, hit):
        assert ("self_harm" in labels(inbound(text))) is hit

    @pytest.mark.parametrize(
        ("text", "label", "hit"),
        [
            # First-person intent, means and plans (SAFE-01.intent), not figures of speech.
            ("Been saving up my sleeping pills for weeks", "self_harm", True),
            ("how many paracetamol would it take to die", "self_harm", True),
            ("I'm just a burden to everyone", "self_harm", True),
            ("im so tired of living like this", "self_harm", True),
            ("gonna unalive myself tbh", "self_harm", True),
            ("I want to take my life back after the divorce", "self_harm", False),
            ("I'm ending things with my phone provider", "self_harm", False),
            # Threats: intent + violence + a person or place; negations, games and hazards are not.
            ("I swear Ill bash every one of you at that counter", "threat", True),
            ("Someone's gonna get shot at your branch", "threat", True),
            ("i know where your case manager parks", "threat", True),
            ("I would never hurt anyone, I just want my payment", "threat", False),
            ("We're going to smash them on Saturday in the grand final", "threat", False),
            ("I'll kill you in the next round of fortnite", "threat", False),
            ("someone is going to get hurt on that broken footpath", "threat", False),
            ("Can I bring my gun licence to the appointment as ID?", "threat", False),
            # Emergencies in progress, not alarms, drills, anniversaries or leaks.
            ("Flames are racing through the paddock toward the house", "emergency", True),
            ("my grandpa isn't waking up and his lips are going blue", "emergency", True),
            ("Floodwater is up to our windows", "emergency", True),
            ("The smoke alarm in the building keeps going off", "emergency", False),
            ("the fire in our street last year was awful, any recovery grants?", "emergency", False),
            ("Water is coming through my ceiling again, when will housing fix the roof?", "emergency", False),
            # Family and domestic violence: an abuser, an act or a threat, a victim.
            ("my boyfriend punched me and took my bank card", "dfv", True),
            ("She keeps threatening to hurt the kids", "dfv", True),
            ("fleeing DV with two kids, where do I start", "dfv", True),
            ("hit me up when the office opens", "dfv", False),
            ("my brother beat me at chess again", "dfv", False),
        ],
    )
    def test_crisis_intent_patterns(self, text, label, hit):
        assert (label in labels(inbound(text))) is hit, text

    @pytest.mark.parametrize(
        ("text", "hit"), [("f*ck this", True), ("sh1t service", True), ("Scunthorpe", False)]
    )
    def test_disguised_profanity(self, text, hit):
        assert ("profanity" in labels(inbound(text))) is hit


class TestCatalogueAdditions:
    """PI-12, PI-13, MOD-05, MOD-07, SLA-02, OUT-01 in au-gov and the OUT-04 embargo detector."""

    def test_a_named_staff_member_is_redacted_but_not_the_role(self):
        s = inbound("My case officer Sarah Jones refused my claim")
        assert [f.rule_id for f in s.findings] == ["PI-12"]
        assert s.redacted_text == "My case officer [staff name removed] refused my claim"
        assert "pii:staff_name" not in labels(inbound("The officer Told me to wait"))
        assert "pii:staff_name" not in labels(inbound("The case manager on Monday said no"))

    def test_an_image_described_as_a_document_needs_an_image(self):
        image = (engine.MediaItem(type="image"),)
        assert "pii:image" in labels(inbound("Here's my Medicare card", media=image))
        assert "pii:image" not in labels(inbound("Here's my Medicare card"))
        described = (engine.MediaItem(type="image", alt_text="Photo of my passport"),)
        assert "pii:image" in labels(inbound("see attached", media=described))
        reply = outbound(
            "Here is the letter we sent.", media=(engine.MediaItem(type="image", alt_text="A letter"),)
        )
        assert reply.decision == "block"
        assert "PI-13" in {f.rule_id for f in reply.findings}

    def test_a_near_duplicate_is_flooding(self):
        assert "flooding" in labels(inbound("When is my payment due?", duplicate=True))
        assert "flooding" not in labels(inbound("When is my payment due?"))

    def test_court_matters_and_defamation_complaints(self):
        assert "legal" in labels(inbound("There is a suppression order on that case"))
        assert "legal" not in labels(inbound("When does the local court reopen?"))
        assert "defamation_complaint" in labels(
            inbound("A defamatory comment about me is on your page, remove it")
        )
        assert "defamation_complaint" not in labels(inbound("What do the defamation law reforms mean?"))

    def test_a_checker_outside_the_department_is_blocked(self):
        other = outbound("Open at 9.", department="tax", authorised_departments=frozenset({"transport"}))
        assert other.decision == "block"
        assert [f.rule_id for f in other.findings] == ["OUT-01"]
        assert (
            outbound("Open at 9.", department="tax", authorised_departments=frozenset({"tax"})).decision
            == "allow"
        )
        assert outbound("Open at 9.", department="tax").decision == "allow"  # a service: not limited

    def test_an_embargoed_term_blocks_until_its_release_time(self):
        pack = engine.compile_pack(
            parse_pack(
                b"""
name: budget
version: "1"
rules:
  - id: OUT-04
    description: Budget measures before the Treasurer announces them.
    source: APS Code of Conduct
    applies_to: outbound
    label: embargo
    severity: high
    action: block
    message: The reply mentions embargoed material.
    detector:
      type: embargo
      items:
        - {terms: [energy bill relief, housing accord], until: "2026-11-26T19:30:00+10:00"}
"""
            )
        )
        draft = "Energy Bill Relief will continue next year."
        before = engine.check(pack, draft, engine.Context(direction="outbound", now=NOW))
        assert before.decision == "block"
        assert before.findings[0].start == 0
        assert "2026-11-26T19:30:00+10:00" in before.findings[0].message
        after = NOW + timedelta(hours=10)
        assert engine.check(pack, draft, engine.Context(direction="outbound", now=after)).decision == "allow"

    def test_an_embargo_without_a_time_zone_is_invalid(self):
        with pytest.raises(PackInvalid):
            parse_pack(
                b"""
name: budget
version: "1"
rules:
  - id: OUT-04
    description: x
    source: x
    applies_to: outbound
    label: embargo
    severity: high
    action: block
    message: x
    detector: {type: embargo, items: [{terms: [x], until: "2026-11-26T19:30:00"}]}
"""
            )


class TestGates:
    def test_gates_change_no_finding_on_the_corpus(self):
        # The corpus and every held-out set: the held-out sets exercise the crisis patterns most.
        gated, ungated = default_pack(), engine.compile_pack(default_pack().pack, optimised=False)
        files = sorted(CORPUS.parent.glob("*.jsonl"))
        lines = [line for f in files for line in f.read_text().splitlines()[1:]]
        for line in lines:
            item = json.loads(line)
            for direction in ("inbound", "outbound"):
                ctx = engine.Context(direction=direction, now=NOW, platform="x")
                assert engine.evaluate(gated, item["text"], ctx) == engine.evaluate(
                    ungated, item["text"], ctx
                )

    def test_disguised_lexicon_fast_path_finds_what_a_full_scan_finds(self):
        # MOD-01 tries its pattern only where a disguised form can start; a full scan is the reference.
        cr = next(c for c in default_pack().inbound if c.rule.id == "MOD-01")
        d = cr.rule.detector
        assert d.type == "lexicon"
        body = "|".join(
            engine._term_regex(t, inflect=d.inflections, obfuscate=True) for t in engine.lexicon_terms(d)
        )
        full = re.compile(rf"(?<![\w@#*$])(?:{body})(?![\w*])", re.IGNORECASE)
        exclude = re.compile("|".join(f"(?:{p})" for p in d.exclude), re.IGNORECASE)
        texts = [
            json.loads(line)["text"]
            for f in sorted(CORPUS.parent.glob("*.jsonl"))
            for line in f.read_text().splitlines()[1:]
        ]
        texts += [
            "x!sh1t",
            "!sh1t!sh1t",
            "b1tch@work",
            "$h1t",
            "fu*kfu*k",
            "a-f*ck-b",
            "P.S. sh!t",
            "ABC1 f@ck",
            "pr1ck!",
        ]
        ctx = engine.Context(direction="inbound", now=NOW)
        for text in texts:
            got = [(h.start, h.end) for h in cr.find(engine._Text(text), ctx)]
            expected = [
                m.span()
                for m in full.finditer(text)
                if not engine._excluded(engine._Rx(exclude), engine._Text(text), *m.span())
            ]
            assert got == expected, text

    def test_every_form_of_every_lexicon_term_passes_its_gate(self):
        pack = default_pack()
        for cr in pack.rules:
            d = cr.rule.detector
            if d.type != "lexicon" or d.obfuscation:
                continue
            for term in d.terms:
                words = term.split()
                forms = engine.inflections(words[0].lower()) if d.inflections else [words[0].lower()]
                for form in forms:
                    text = " ".join(["so", form, *words[1:], "today"])
                    ctx = engine.Context(direction="outbound" if cr.outbound else "inbound", now=NOW)
                    modes = frozenset(cr.rule.modes.only_in)
                    ctx = dataclasses.replace(ctx, active_modes=modes)
                    assert cr.rule.id in {f.rule_id for f in engine.evaluate(pack, text, ctx).findings}, text


class TestCrisisAlwaysRuns:
    def test_a_failing_rule_is_reported_and_crisis_labels_are_still_set(self):
        pack = default_pack()

        def broken(_text: object, _ctx: object) -> list[engine.Hit]:
            raise RuntimeError("boom")

        rules = tuple(
            dataclasses.replace(r, find=broken) if r.rule.id == "PI-06" else r for r in pack.inbound
        )
        damaged = dataclasses.replace(pack, inbound=rules)
        result = engine.screen(
            damaged, "call me 0491 570 006, I want to end my life", engine.Context("inbound", NOW)
        )
        assert "self_harm" in result.labels
        assert result.risk == "critical"
        assert result.priority == 1
        assert result.failed_rules == ["PI-06"]

    def test_a_failing_rule_makes_an_outbound_check_need_review(self):
        pack = default_pack()

        def broken(_text: object, _ctx: object) -> list[engine.Hit]:
            raise ValueError("boom")

        rules = tuple(
            dataclasses.replace(r, find=broken) if r.rule.id == "OUT-LEN" else r for r in pack.outbound
        )
        damaged = dataclasses.replace(pack, outbound=rules)
        result = engine.check(
            damaged, "The office opens at 9am.", engine.Context("outbound", NOW, platform="x")
        )
        assert result.decision == "review"


class TestOutbound:
    def test_the_decision_is_the_strongest_action(self):
        assert outbound("The office opens at 9am.").decision == "allow"
        assert outbound("As we already said, the office opens at 9am.").decision == "review"
        assert outbound("As we already said, send us your TFN.").decision == "block"

    def test_findings_explain_themselves_and_suggest_a_fix(self):
        finding = next(f for f in outbound("Please send us your TFN").findings if f.rule_id == "OUT-06")
        assert "private channel" in (finding.suggestion or "")
        assert finding.source
        assert finding.severity == "high"

    def test_asking_for_details_in_a_private_message_is_a_warning_not_a_block(self):
        assert outbound("Please send us your phone number", visibility="private").decision == "allow"
        assert "pii_request" in labels(outbound("Please send us your phone number", visibility="private"))

    def test_links_must_be_government_https_and_not_shortened(self):
        assert outbound("See https://www.ato.gov.au/tfn").decision == "allow"
        assert outbound("See http://www.ato.gov.au/tfn").decision == "block"
        assert outbound("See https://bit.ly/3xyz").decision == "block"
        assert outbound("See https://example.com/offer").decision == "block"

    def test_media_needs_alt_text_and_captions(self):
        good = [engine.MediaItem("image", alt_text="Map of the M4 detour via Parramatta Road")]
        assert outbound("Detour map", media=good).decision == "allow"
        for bad in (
            [engine.MediaItem("image")],
            [engine.MediaItem("image", alt_text="image of map")],
            [engine.MediaItem("video", captions=False)],
        ):
            assert outbound("Detour map", media=bad).decision == "block"
        assert outbound("Divider", media=[engine.MediaItem("image", decorative=True)]).decision == "allow"

    def test_platform_length(self):
        assert outbound("a" * 281, platform="x").decision == "block"
        assert outbound("a" * 281, platform="facebook").decision == "allow"

    def test_a_reply_to_a_crisis_post_needs_two_24_7_services(self):
        crisis = frozenset({"self_harm"})
        assert outbound("Call Lifeline 13 11 14.", reply_to_labels=crisis).decision == "block"
        ok = outbound("Lifeline 13 11 14 or Suicide Call Back Service 1300 659 467.", reply_to_labels=crisis)
        assert ok.decision == "allow"


class TestModes:
    def test_caretaker_and_crisis_switch_rules_on_and_off(self):
        promo = "We're proud to announce a new initiative, check out our giveaway :)"
        normal = outbound(promo)
        assert {"caretaker", "crisis_mode"}.isdisjoint(labels(normal))
        assert "style" in labels(normal)
        caretaker = outbound(promo, active_modes=frozenset({"caretaker"}))
        assert caretaker.decision == "block"
        assert "caretaker" in labels(caretaker)
        crisis = outbound(promo, active_modes=frozenset({"crisis"}))
        assert "crisis_mode" in labels(crisis)
        assert "style" not in labels(crisis)

    def test_a_static_schedule_window_fires_only_inside_it(self):
        doc = MINIMAL.replace(
            "detector: {type: regex, patterns: ['casino']}",
            "detector: {type: schedule_window, windows: "
            "[{start: '2026-11-26T00:00:00+00:00', end: '2026-11-27T00:00:00+00:00'}]}",
        )
        pack = engine.compile_pack(parse_pack(doc))
        inside = engine.Context("outbound", NOW)
        outside = engine.Context("outbound", NOW + timedelta(days=2))
        assert engine.check(pack, "hi", inside).decision == "allow"  # warn is allowed, but found
        assert [f.rule_id for f in engine.check(pack, "hi", inside).findings] == ["R-1"]
        assert engine.check(pack, "hi", outside).findings == []


class TestRedaction:
    def test_overlapping_spans_merge_and_text_outside_stays(self):
        f = engine.Finding("a", "pii:x", "high", "redact", 4, 10, "m", None, "s")
        g = engine.Finding("b", "pii:y", "high", "redact", 8, 12, "m", None, "s")
        assert engine.redact("abc 123456789 end", [f, g], {"a": "[A]", "b": "[B]"}) == "abc [A]9 end"

    def test_redacted_text_keeps_no_personal_information(self):
        text = "Email jo@example.com or call 0491 570 006, I live at 12 Wattle Street, DOB 01/02/1990"
        result = inbound(text)
        for secret in ("jo@example.com", "0491 570 006", "12 Wattle Street", "01/02/1990"):
            assert secret not in result.redacted_text

    @settings(max_examples=50, deadline=None)
    @given(st.text(max_size=300))
    def test_any_text_screens_without_error(self, text):
        result = inbound(text)
        assert result.failed_rules == []
        for f in result.findings:
            assert f.start is None or 0 <= f.start <= (f.end or 0) <= len(text)
