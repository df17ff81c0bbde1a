from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.ids import pseudonym, uuid7


class TestUuid7:
    @given(st.integers(min_value=0, max_value=(1 << 48) - 1))
    def test_has_version_7_variant_rfc_and_carries_the_millisecond(self, ms: int) -> None:
        u = uuid7(ms)
        assert u.version == 7
        assert u.variant == "specified in RFC 4122"
        assert u.int >> 80 == ms

    @given(st.integers(min_value=0, max_value=(1 << 48) - 2))
    def test_sorts_by_time(self, ms: int) -> None:
        assert str(uuid7(ms)) < str(uuid7(ms + 1))

    def test_is_unique_within_a_millisecond(self) -> None:
        assert len({uuid7(1_700_000_000_000) for _ in range(10_000)}) == 10_000


class TestPseudonym:
    def test_is_stable_and_keyed(self) -> None:
        assert pseudonym(b"k1", "x", "42") == pseudonym(b"k1", "x", "42")
        assert pseudonym(b"k1", "x", "42") != pseudonym(b"k2", "x", "42")

    def test_parts_are_separated(self) -> None:
        assert pseudonym(b"k", "x", "42") != pseudonym(b"k", "x4", "2")
        assert "42" not in pseudonym(b"k", "x", "42")
