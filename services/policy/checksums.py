"""Check-digit algorithms of Australian identifiers and payment cards: pure functions over digit strings.

Implemented from the rules and worked examples in docs/policy-checks.md §2 (which agree with python-stdnum and
Presidio); the legacy 8-digit TFN branch is ours because neither library has it. Every function takes the
digits only (callers strip spaces and dashes) and never raises on bad input: it answers False.
"""

from __future__ import annotations

_TFN9_WEIGHTS = (1, 4, 3, 7, 5, 8, 6, 9, 10)
_TFN8_WEIGHTS = (10, 7, 8, 4, 6, 3, 5, 1)
_MEDICARE_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9)
_ABN_WEIGHTS = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
_ACN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 1)


def _digits(value: str, *lengths: int) -> list[int] | None:
    if len(value) not in lengths or not value.isascii() or not value.isdigit():
        return None
    return [ord(c) - 48 for c in value]


def tfn_valid(value: str) -> bool:
    """Tax File Number: 9 digits (or legacy 8) whose weighted sum is divisible by 11."""
    d = _digits(value, 8, 9)
    if d is None:
        return False
    weights = _TFN9_WEIGHTS if len(d) == 9 else _TFN8_WEIGHTS
    return sum(a * w for a, w in zip(d, weights, strict=True)) % 11 == 0


def medicare_valid(value: str) -> bool:
    """Medicare card: 10 digits (11 with the IRN); first 2-6, 9th = weighted sum of 1-8 mod 10, issue 1-9."""
    d = _digits(value, 10, 11)
    if d is None or not 2 <= d[0] <= 6 or d[9] == 0 or (len(d) == 11 and d[10] == 0):
        return False
    return sum(a * w for a, w in zip(d[:8], _MEDICARE_WEIGHTS, strict=True)) % 10 == d[8]


def abn_valid(value: str) -> bool:
    """Australian Business Number: 11 digits, first digit minus one, weighted sum divisible by 89."""
    d = _digits(value, 11)
    if d is None or d[0] == 0:
        return False
    d[0] -= 1
    return sum(a * w for a, w in zip(d, _ABN_WEIGHTS, strict=True)) % 89 == 0


def acn_valid(value: str) -> bool:
    """Australian Company Number: 9 digits, check = (10 - weighted sum of the first 8 mod 10) mod 10."""
    d = _digits(value, 9)
    if d is None:
        return False
    return (10 - sum(a * w for a, w in zip(d[:8], _ACN_WEIGHTS, strict=True)) % 10) % 10 == d[8]


def luhn_valid(value: str) -> bool:
    """Payment card numbers (13-19 digits) pass the Luhn check."""
    d = _digits(value, *range(13, 20))
    if d is None:
        return False
    total = 0
    for i, digit in enumerate(reversed(d)):
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def crn_valid(value: str) -> bool:
    """Centrelink CRN: 9 digits and a letter. No public check-character algorithm exists: format only."""
    return len(value) == 10 and value[:9].isascii() and value[:9].isdigit() and value[9].isalpha()


# Generators, used by the tests and the corpus builder to make synthetic (never issued) identifiers.


def tfn_check_digit(base8: str) -> str | None:
    """The last digit making ``base8`` a valid 9-digit TFN, or None if no digit works (weight 10 ≡ -1)."""
    for c in "0123456789":
        if tfn_valid(base8 + c):
            return c
    return None


def medicare_check_digit(base8: str) -> str:
    d = [int(c) for c in base8]
    return str(sum(a * w for a, w in zip(d, _MEDICARE_WEIGHTS, strict=True)) % 10)


def abn_from_base(base9: str) -> str:
    """The valid ABN for a 9-digit identifier: the first leading pair 10..99 that satisfies mod 89."""
    for prefix in range(10, 100):
        candidate = f"{prefix}{base9}"
        if abn_valid(candidate):
            return candidate
    raise ValueError(f"no ABN check digits for {base9}")  # not reachable: 90 pairs cover every residue


def acn_check_digit(base8: str) -> str:
    d = [int(c) for c in base8]
    return str((10 - sum(a * w for a, w in zip(d, _ACN_WEIGHTS, strict=True)) % 10) % 10)


def luhn_check_digit(partial: str) -> str:
    for c in "0123456789":
        if luhn_valid(partial + c):
            return c
    raise ValueError("no Luhn digit")  # not reachable: exactly one digit satisfies the check
