"""Quality of the default au-gov pack, measured on the labelled corpus in tests/data/policy/corpus.jsonl.

Prints precision and recall per label (run with ``-s`` to see the table; it is also in docs/policy.md) and
fails below the goals: recall 1.0 for checksum identifiers, >= 0.95 for crisis labels, precision >= 0.95
for every measured label.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from services.policy import engine
from services.policy.service import default_pack

CORPUS = Path(__file__).parents[1] / "data" / "policy" / "corpus.jsonl"
CHECKSUM_LABELS = {"pii:tfn", "pii:medicare", "pii:card", "business_id:abn", "business_id:acn"}
CRISIS_LABELS = {"self_harm", "threat", "emergency"}
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def load(path: Path = CORPUS) -> tuple[list[str], list[dict[str, object]]]:
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    return header["measured_labels"], [json.loads(line) for line in lines[1:]]


def predict(item: dict[str, object]) -> set[str]:
    allowed = item.get("authorised_departments")
    ctx = engine.Context(
        direction=item["direction"],  # type: ignore[arg-type]
        now=NOW,
        platform="x",
        visibility=item.get("visibility", "public"),  # type: ignore[arg-type]
        media=[engine.MediaItem(**m) for m in item.get("media", [])],  # type: ignore[attr-defined]
        duplicate=bool(item.get("duplicate_of")),
        department=item.get("department"),  # type: ignore[arg-type]
        authorised_departments=None if allowed is None else frozenset(allowed),  # type: ignore[arg-type]
    )
    return {f.label for f in engine.evaluate(default_pack(), str(item["text"]), ctx).findings}


def measure(path: Path = CORPUS) -> tuple[list[tuple[str, int, int, int, float, float]], list[str]]:
    measured, items = load(path)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    errors = []
    for item in items:
        expected = set(item["labels"])  # type: ignore[arg-type]
        got = predict(item) & set(measured)
        for label in got & expected:
            tp[label] += 1
        for label in got - expected:
            fp[label] += 1
            errors.append(f"FP {label:18} {item['id']}: {item['text']}")
        for label in expected - got:
            fn[label] += 1
            errors.append(f"FN {label:18} {item['id']}: {item['text']}")
    rows = []
    for label in measured:
        p = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 1.0
        r = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 1.0
        rows.append((label, tp[label], fp[label], fn[label], p, r))
    return rows, errors


def table(rows: list[tuple[str, int, int, int, float, float]], n: int) -> str:
    out = [
        f"Corpus: {n} items",
        "| label | TP | FP | FN | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    out += [f"| {lb} | {tp} | {fp} | {fn} | {p:.3f} | {r:.3f} |" for lb, tp, fp, fn, p, r in rows]
    return "\n".join(out)


class TestCorpus:
    def test_the_corpus_is_big_enough_and_covers_every_measured_label(self):
        measured, items = load()
        assert len(items) >= 300
        counts = Counter(label for item in items for label in item["labels"])  # type: ignore[attr-defined]
        assert all(counts[label] >= 3 for label in measured), counts

    def test_precision_and_recall_meet_the_goals(self):
        rows, errors = measure()
        print("\n" + table(rows, len(load()[1])))
        for line in errors:
            print(line)
        failures = []
        for label, _tp, _fp, _fn, precision, recall in rows:
            if precision < 0.95:
                failures.append(f"{label}: precision {precision:.3f} < 0.95")
            if label in CHECKSUM_LABELS and recall < 1.0:
                failures.append(f"{label}: recall {recall:.3f} < 1.0")
            if label in CRISIS_LABELS and recall < 0.95:
                failures.append(f"{label}: recall {recall:.3f} < 0.95")
        assert not failures, failures
