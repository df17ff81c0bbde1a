"""The rule language: first match wins, default catches the rest, crisis overrides, faults name rule+field."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.rules import PostFacts, RuleError, Target, compile_ruleset, has_word
from shared.contracts import PostScreenedV1

CRISIS = Target("crisis", "crisis.crisis", 1, frozenset(), "crisis")


def screened(**overrides: Any) -> PostScreenedV1:
    values: dict[str, Any] = {
        "post_id": "p1",
        "screening_id": "s1",
        "policy_version": "v1",
        "labels": [],
        "risk": "low",
        "priority": 3,
        "redacted_text": "Is the M4 closed tonight? #Traffic",
        "platform": "x",
        "account": "@TransportAgency",
        "author_ref": "a1",
        "screened_at": datetime(2025, 6, 2, tzinfo=UTC),
    }
    values.update(overrides)
    return PostScreenedV1(**values)


RULES: list[dict[str, Any]] = [
    {
        "id": "roads",
        "when": {
            "all": [
                {"field": "text", "op": "contains_any", "value": ["m4", "road closure"]},
                {"field": "platform", "op": "in", "value": ["x", "facebook"]},
            ]
        },
        "target": {"department": "transport", "required_skills": ["roads"], "sla_policy": "standard"},
    },
    {
        "id": "urgent",
        "when": {
            "any": [
                {"field": "risk", "op": "gte", "value": "high"},
                {"field": "hashtags", "op": "contains_any", "value": ["#outage"]},
            ]
        },
        "target": {"department": "ops", "queue": "ops.urgent", "priority": 2},
    },
    {
        "id": "not-x",
        "when": {"not": {"field": "platform", "op": "eq", "value": "x"}},
        "target": {"department": "web"},
    },
]


def ruleset(rules: list[dict[str, Any]] = RULES) -> Any:
    return compile_ruleset(version="7", rules=rules, default={"department": "general"}, crisis=CRISIS)


class TestEvaluation:
    def test_first_matching_rule_wins(self) -> None:
        m = ruleset().evaluate(PostFacts.from_screened(screened(risk="high")))
        assert (m.rule_id, m.target.department, m.target.queue, m.priority) == (
            "roads",
            "transport",
            "transport.default",
            3,
        )
        assert m.target.required_skills == {"roads"}
        assert m.ruleset_version == "7"

    def test_later_rule_when_earlier_does_not_match(self) -> None:
        m = ruleset().evaluate(PostFacts.from_screened(screened(redacted_text="power #Outage", risk="low")))
        assert (m.rule_id, m.target.queue, m.priority) == ("urgent", "ops.urgent", 2)

    def test_keywords_match_whole_words_only(self) -> None:
        m = ruleset().evaluate(PostFacts.from_screened(screened(redacted_text="the M40 is fine")))
        assert m.rule_id == "default"

    def test_default_rule_catches_the_rest_with_screening_priority(self) -> None:
        m = ruleset().evaluate(PostFacts.from_screened(screened(redacted_text="hello", priority=4)))
        assert (m.rule_id, m.target.department, m.priority) == ("default", "general", 4)

    def test_not_operator(self) -> None:
        m = ruleset().evaluate(PostFacts.from_screened(screened(redacted_text="hi", platform="email")))
        assert m.rule_id == "not-x"

    @pytest.mark.parametrize("label", ["self_harm", "threat", "emergency"])
    def test_crisis_labels_go_to_the_crisis_queue_before_any_rule(self, label: str) -> None:
        m = ruleset().evaluate(PostFacts.from_screened(screened(labels=[label], priority=4)))
        assert (m.rule_id, m.target.queue, m.priority) == ("builtin.crisis", "crisis.crisis", 1)

    def test_language_comes_from_lang_label(self) -> None:
        facts = PostFacts.from_screened(screened(labels=["lang:vi"]))
        rs = ruleset(
            [
                {
                    "id": "vi",
                    "when": {"field": "language", "op": "eq", "value": "vi"},
                    "target": {"department": "multicultural"},
                }
            ]
        )
        assert rs.evaluate(facts).rule_id == "vi"


class TestValidation:
    def fault(self, rules: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        with pytest.raises(RuleError) as info:
            ruleset(rules)
        return info.value.problems

    def test_unknown_field_names_rule_and_path(self) -> None:
        [(rule, path, reason)] = self.fault(
            [
                {
                    "id": "r1",
                    "when": {"field": "colour", "op": "eq", "value": "x"},
                    "target": {"department": "a"},
                }
            ]
        )
        assert (rule, path) == ("r1", "rules[0].when.field")
        assert "unknown field" in reason

    def test_operator_that_does_not_apply(self) -> None:
        [(rule, path, _)] = self.fault(
            [
                {
                    "id": "r1",
                    "when": {"all": [{"field": "labels", "op": "gte", "value": "x"}]},
                    "target": {"department": "a"},
                }
            ]
        )
        assert (rule, path) == ("r1", "rules[0].when.all[0].op")

    def test_bad_value_target_and_duplicates(self) -> None:
        problems = self.fault(
            [
                {
                    "id": "r1",
                    "when": {"field": "risk", "op": "gte", "value": "extreme"},
                    "target": {"department": "a"},
                },
                {
                    "id": "r1",
                    "when": {"field": "risk", "op": "eq", "value": "low"},
                    "target": {"department": "A B"},
                },
            ]
        )
        paths = {(r, p) for r, p, _ in problems}
        assert ("r1", "rules[0].when.value") in paths
        assert ("r1", "rules[1].id") in paths
        assert ("r1", "rules[1].target.department") in paths

    def test_missing_when_and_deep_nesting(self) -> None:
        deep: dict[str, Any] = {"field": "risk", "op": "eq", "value": "low"}
        for _ in range(8):
            deep = {"not": deep}
        problems = self.fault(
            [
                {"id": "a", "target": {"department": "x"}},
                {"id": "b", "when": deep, "target": {"department": "x"}},
            ]
        )
        assert ("a", "rules[0].when") in {(r, p) for r, p, _ in problems}
        assert any(r == "b" and "deep" in m for r, _, m in problems)


class TestWordMatching:
    @settings(max_examples=300, deadline=None)
    @given(
        text=st.text(alphabet="abc _-.,!?#'\n", max_size=40),
        word=st.text(alphabet="abc", min_size=1, max_size=3),
    )
    def test_has_word_agrees_with_tokenising(self, text: str, word: str) -> None:
        assert has_word(text, word) == (word in re.findall(r"\w+", text))

    def test_phrases_match_on_word_boundaries(self) -> None:
        assert has_word("the road closure on main st", "road closure")
        assert not has_word("railroad closures", "road closure")
