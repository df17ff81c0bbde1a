"""Check-digit algorithms: the worked examples of docs/policy-checks.md §2, and properties over generated
numbers (every valid number is accepted; changing one digit of a valid number makes it invalid)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.policy import checksums as c

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def _mutate_one(value: str, index: int, delta: int) -> str:
    i = index % len(value)
    return value[:i] + str((int(value[i]) + delta) % 10) + value[i + 1 :]


class TestWorkedExamples:
    @pytest.mark.parametrize(
        ("fn", "value", "valid"),
        [
            (c.tfn_valid, "123456782", True),
            (c.tfn_valid, "123456789", False),
            (c.tfn_valid, "12345677", True),
            (c.medicare_valid, "2123456701", True),
            (c.medicare_valid, "21234567011", True),
            (c.medicare_valid, "2123456791", False),
            (c.medicare_valid, "2123456700", False),  # issue number 0
            (c.abn_valid, "18123456789", True),
            (c.abn_valid, "51824753556", True),
            (c.abn_valid, "11123456780", True),
            (c.abn_valid, "18123456788", False),
            (c.acn_valid, "123456780", True),
            (c.acn_valid, "123456781", False),
            (c.luhn_valid, "4111111111111111", True),
            (c.luhn_valid, "4111111111111112", False),
            (c.crn_valid, "123456789A", True),
            (c.crn_valid, "123456789", False),
        ],
    )
    def test_the_catalogue_examples_hold(self, fn, value, valid):
        assert fn(value) is valid

    def test_the_generators_reproduce_the_examples(self):
        assert c.tfn_check_digit("12345678") == "2"
        assert c.medicare_check_digit("21234567") == "0"
        assert c.abn_from_base("123456789") == "18123456789"
        assert c.acn_check_digit("12345678") == "0"

    @pytest.mark.parametrize(
        "junk",
        ["", "abc", "12 345 678", "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff12", "1234567890123"],
    )
    def test_junk_is_invalid_never_an_error(self, junk):
        for fn in (c.tfn_valid, c.medicare_valid, c.abn_valid, c.acn_valid, c.crn_valid):
            assert fn(junk) is False


class TestGeneratedNumbers:
    @settings(deadline=None)
    @given(st.text(alphabet="0123456789", min_size=8, max_size=8))
    def test_every_tfn_with_a_check_digit_is_valid_and_one_digit_changed_is_not(self, base):
        check = c.tfn_check_digit(base)
        if check is None:  # weight 10 is -1 mod 11: one residue has no digit, as with issued TFNs
            return
        tfn = base + check
        assert c.tfn_valid(tfn)
        for i in range(9):
            for delta in range(1, 10):
                assert not c.tfn_valid(_mutate_one(tfn, i, delta))

    @settings(deadline=None)
    @given(st.text(alphabet="0123456789", min_size=7, max_size=7))
    def test_every_legacy_8_digit_tfn_is_valid_and_one_digit_changed_is_not(self, base):
        partial = sum(int(d) * w for d, w in zip(base, (10, 7, 8, 4, 6, 3, 5), strict=True))
        last = (-partial) % 11  # the last weight is 1
        if last == 10:
            return
        tfn = base + str(last)
        assert c.tfn_valid(tfn)
        for i in range(8):
            for delta in range(1, 10):
                assert not c.tfn_valid(_mutate_one(tfn, i, delta))

    @settings(deadline=None)
    @given(st.integers(2, 6), st.text(alphabet="0123456789", min_size=7, max_size=7), st.integers(1, 9))
    def test_every_medicare_number_is_valid_and_a_changed_check_digit_is_not(self, first, rest, issue):
        base = f"{first}{rest}"
        number = base + c.medicare_check_digit(base) + str(issue)
        assert c.medicare_valid(number)
        assert c.medicare_valid(number + "1")
        for delta in range(1, 10):
            assert not c.medicare_valid(_mutate_one(number, 8, delta))

    @settings(deadline=None)
    @given(st.text(alphabet="0123456789", min_size=9, max_size=9))
    def test_every_abn_is_valid_and_one_digit_changed_is_not(self, base):
        abn = c.abn_from_base(base)
        assert c.abn_valid(abn)
        for i in range(11):
            for delta in range(1, 10):
                mutated = _mutate_one(abn, i, delta)
                if mutated[0] != "0":
                    assert not c.abn_valid(mutated)

    @settings(deadline=None)
    @given(st.text(alphabet="0123456789", min_size=8, max_size=8))
    def test_every_acn_is_valid_and_a_changed_digit_is_caught_unless_the_weight_hides_it(self, base):
        acn = base + c.acn_check_digit(base)
        assert c.acn_valid(acn)
        weights = (8, 7, 6, 5, 4, 3, 2, 1, 1)
        for i in range(9):
            for delta in range(1, 10):
                # mod 10 with even weights cannot see a change of 5 (8 x 5 = 40): a limit of the algorithm.
                hidden = (weights[i] * delta) % 10 == 0
                assert c.acn_valid(_mutate_one(acn, i, delta)) is hidden

    @settings(deadline=None)
    @given(st.text(alphabet="0123456789", min_size=12, max_size=18))
    def test_every_luhn_number_is_valid_and_one_digit_changed_is_not(self, partial):
        card = partial + c.luhn_check_digit(partial)
        assert c.luhn_valid(card)
        for i in range(len(card)):
            for delta in range(1, 10):
                assert not c.luhn_valid(_mutate_one(card, i, delta))
