"""Rebuild this folder's train/valid/test CSVs from the source files of yasirabd/sentiment-dkk-semarang.

    python data/sentiment/dkk_semarang/prepare.py SOURCE_DIR
    # SOURCE_DIR holds train_masked.csv, test_masked.csv and data_inference_masked.csv

The source has exact repeats, repeats with conflicting labels and texts in both train and test (see
README.md here). Texts are compared lower-cased with whitespace collapsed. A text whose copies disagree
is dropped everywhere; one copy of the rest is kept; a train text that is also a test text is dropped
from train; valid is a seeded, label-stratified tenth of what remains of train. The unlabelled comments
(teachers' targets only, ``--unlabelled``) keep one copy of each text that no labelled split holds, so
distillation never sees a valid or test text.
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
    labelled = {norm(t) for rows in splits.values() for t, _ in rows}
    counts["unlabelled"] = write_unlabelled(source, out, labelled)
    return counts


def write_unlabelled(source: Path, out: Path, labelled: set[str]) -> int:
    """``unlabelled.csv``: one copy of each unlabelled comment that no labelled split holds. The source
    names the file ``data_inference_masked.csv``; a copy may call it ``unlabelled_inference_masked.csv``."""
    names = ("data_inference_masked.csv", "unlabelled_inference_masked.csv")
    found = next((source / name for name in names if (source / name).exists()), source / names[0])
    with found.open(encoding="utf-8-sig", newline="") as fh:
        texts = [r["text"].strip() for r in csv.DictReader(fh)]
    seen = set(labelled)
    kept = []
    for text in texts:
        key = norm(text)
        if text and key not in seen:
            seen.add(key)
            kept.append(text)
    with (out / "unlabelled.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text"])
        writer.writerows([t] for t in kept)
    return len(kept)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), Path(__file__).resolve().parent))
