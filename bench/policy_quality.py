"""Precision and recall of the default pack on a labelled file (report only; the gate is the test).

    .venv/bin/python bench/policy_quality.py tests/data/policy/heldout4.jsonl

The held-out sets and what each is worth are described in docs/policy.md ("Quality"): heldout.jsonl and
heldout2.jsonl have since been used to tune the crisis rules, heldout3.jsonl was written by the author of
the later patterns just before writing them, heldout4.jsonl was written after they were frozen and is the
least contaminated (44 posts: a small sample, wide intervals). The labelled corpus and its thresholds live
in tests/policy/test_quality.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.policy.test_quality import load, measure, table  # noqa: E402


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "policy" / "heldout4.jsonl"
    rows, errors = measure(path)
    print(table(rows, len(load(path)[1])))
    for line in errors:
        print(line)


if __name__ == "__main__":
    main()
