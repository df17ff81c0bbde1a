"""Precision and recall of the default pack on a labelled file (report only; the gate is the test).

    .venv/bin/python bench/policy_quality.py tests/data/policy/heldout.jsonl

heldout.jsonl was written after the au-gov rules were frozen and is never used to tune them, so its table
is the nearest thing to an independent estimate the repository has (40 posts: a small sample, wide
intervals). The labelled corpus and its thresholds live in tests/policy/test_quality.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.policy.test_quality import load, measure, table  # noqa: E402


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "policy" / "heldout.jsonl"
    rows, errors = measure(path)
    print(table(rows, len(load(path)[1])))
    for line in errors:
        print(line)


if __name__ == "__main__":
    main()
