"""The documentation that can be checked against the code is."""

from __future__ import annotations

import re
from pathlib import Path

from scripts.configdoc import TARGET, render
from shared.contracts import ALL_TOPICS, EVENT_TYPES

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_doc_is_generated_from_the_settings() -> None:
    assert TARGET.read_text() == render(), "run: make docs"


def test_events_doc_lists_every_topic_and_event_type() -> None:
    text = (ROOT / "docs" / "events.md").read_text()
    for topic in ALL_TOPICS:
        assert f"`{topic}`" in text, topic
    for event_type, model in EVENT_TYPES.items():
        assert f"`{event_type}`" in text, event_type
        assert model.__name__ in text, model.__name__


def test_readme_shows_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make run" in text
    assert "make test" in text


def test_ci_runs_the_readme_test_command() -> None:
    assert re.search(r"^\S*.*make test", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)


def test_every_setting_says_what_it_means() -> None:
    undocumented = [
        line for line in render().splitlines() if line.startswith("| `") and line.endswith("|  |")
    ]
    assert undocumented == []
