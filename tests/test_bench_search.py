"""The benchmark's search for the highest sustained rate (bench/run.py), a pure function."""

from __future__ import annotations

from bench.run import next_sustained_rate

RATES = (250, 500, 750, 1000)


def search(holds_up_to: int, rates: tuple[int, ...] = RATES) -> tuple[list[int], int]:
    tried: list[tuple[int, bool]] = []
    while (rate := next_sustained_rate(tried, rates)) is not None:
        tried.append((rate, rate <= holds_up_to))
    return [r for r, _ in tried], max((r for r, ok in tried if ok), default=0)


def test_goes_up_the_list_until_a_rate_fails() -> None:
    assert search(600) == ([250, 500, 750], 500)


def test_stops_at_the_end_of_the_list() -> None:
    assert search(5000) == ([250, 500, 750, 1000], 1000)


def test_steps_down_by_halves_when_the_first_rate_fails() -> None:
    assert search(100) == ([250, 125, 62], 62)


def test_gives_up_below_the_floor() -> None:
    assert search(10) == ([250, 125, 62, 31], 0)


def test_a_one_rate_profile_also_steps_down() -> None:
    assert search(200, (300,)) == ([300, 150], 150)
