"""Language detection: remembered results are the detector's results, and the memory stays bounded."""

from __future__ import annotations

import pytest

from services.ingest.normalise import language
from services.ingest.normalise.language import CACHE_ENTRIES, CACHE_MAX_CHARS, detect_language

TEXTS = [
    ("The streetlight outside number 12 has been out since Monday", None),
    ("La farola frente al número 12 está apagada desde el lunes", None),
    ("Die Straßenlaterne vor Nummer 12 ist seit Montag aus", "de"),
    ("ok", "en"),
    ("!!", None),
    ("Bonjour", "en-GB"),
]


class TestCachedDetection:
    @pytest.mark.parametrize(("text", "hint"), TEXTS)
    def test_the_same_answer_as_the_detector_first_and_second_time(self, text: str, hint: str | None) -> None:
        expected = language._detect(text, hint)
        assert detect_language(text, hint=hint) == expected
        assert detect_language(text, hint=hint) == expected

    def test_short_texts_are_remembered_long_ones_are_not(self) -> None:
        language._detect_cached.cache_clear()
        short = "Water main burst on King St, road flooded"
        detect_language(short)
        detect_language(short)
        assert language._detect_cached.cache_info().hits == 1
        long = "The footpath is broken. " * (CACHE_MAX_CHARS // 20)
        assert len(long) > CACHE_MAX_CHARS
        assert detect_language(long) == language._detect(long, None)
        assert language._detect_cached.cache_info().currsize == 1

    def test_the_memory_is_bounded(self) -> None:
        assert language._detect_cached.cache_info().maxsize == CACHE_ENTRIES

    def test_fewer_than_three_letters_is_undetermined_or_the_hint(self) -> None:
        assert detect_language("12 !! ab") == ("und", 0.0)
        assert detect_language("ab 12", hint="EN") == ("en", 0.0)
        assert detect_language("abc")[1] >= 0.0
