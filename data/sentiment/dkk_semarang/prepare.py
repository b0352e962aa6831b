"""Rebuild this folder's train/valid/test CSVs from the source files of yasirabd/sentiment-dkk-semarang.

    python data/sentiment/dkk_semarang/prepare.py SOURCE_DIR   # holds train_masked.csv, test_masked.csv

The source has exact repeats, repeats with conflicting labels and texts in both train and test (see
README.md here). Texts are compared lower-cased with whitespace collapsed. A text whose copies disagree
is dropped everywhere; one copy of the rest is kept; a train text that is also a test text is dropped
from train; valid is a seeded, label-stratified tenth of what remains of train.
"""

from __future__ import annotations

import csv
import random
import sys
from collections import defaultdict
from pathlib import Path

LABELS = ("negative", "neutral", "positive")
SEED = 13
VALID_SHARE = 0.1


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def read(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = [(r["text"].strip(), r["label"].strip().lower()) for r in csv.DictReader(fh)]
    return [(t, label) for t, label in rows if t and label in LABELS]


def dedupe(rows: list[tuple[str, str]], conflicting: set[str]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for text, label in rows:
        key = norm(text)
        if key in conflicting or key in seen:
            continue
        seen.add(key)
        out.append((text, label))
    return out


def main(source: Path, out: Path) -> dict[str, int]:
    train, test = read(source / "train_masked.csv"), read(source / "test_masked.csv")
    labels: dict[str, set[str]] = defaultdict(set)
    for text, label in train + test:
        labels[norm(text)].add(label)
    conflicting = {key for key, found in labels.items() if len(found) > 1}
    test = dedupe(test, conflicting)
    in_test = {norm(t) for t, _ in test}
    train = [row for row in dedupe(train, conflicting) if norm(row[0]) not in in_test]
    rng = random.Random(SEED)
    valid: list[tuple[str, str]] = []
    kept: list[tuple[str, str]] = []
    for label in LABELS:
        group = [row for row in train if row[1] == label]
        rng.shuffle(group)
        cut = round(len(group) * VALID_SHARE)
        valid += group[:cut]
        kept += group[cut:]
    order = {norm(t): i for i, (t, _) in enumerate(train)}  # keep the source order within each split
    splits = {
        "train": sorted(kept, key=lambda r: order[norm(r[0])]),
        "valid": sorted(valid, key=lambda r: order[norm(r[0])]),
        "test": test,
    }
    for name, rows in splits.items():
        with (out / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    counts = {name: len(rows) for name, rows in splits.items()}
    counts["conflicting_texts"] = len(conflicting)
    return counts


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), Path(__file__).resolve().parent))
