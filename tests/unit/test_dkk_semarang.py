"""The deduplicated DKK Semarang split: what prepare.py promises holds for the files in the repo."""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.model.data import DATA_DIR, corpus_files, load_labelled

DKK = DATA_DIR / "sentiment" / "dkk_semarang"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [_norm(row["text"]) for row in csv.DictReader(fh)]


def test_splits_hold_no_repeats_and_share_no_text() -> None:
    splits = {name: _texts(DKK / f"{name}.csv") for name in ("train", "valid", "test")}
    assert {name: len(rows) for name, rows in splits.items()} == {"train": 6574, "valid": 730, "test": 1874}
    for rows in splits.values():
        assert len(set(rows)) == len(rows)
    train, valid, test = (set(rows) for rows in splits.values())
    assert not train & test and not valid & test and not train & valid


def test_every_row_reads_as_labelled_sentiment() -> None:
    texts, labels = load_labelled(DKK / "test.csv")
    assert len(texts) == 1874 and set(labels) == {"negative", "neutral", "positive"}


def test_unlabelled_comments_hold_no_repeat_and_no_labelled_text() -> None:
    with (DKK / "unlabelled.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["text"]
        texts = [_norm(row["text"]) for row in reader]
    assert len(texts) == 15419 and all(texts)
    assert len(set(texts)) == len(texts)
    labelled = {text for name in ("train", "valid", "test") for text in _texts(DKK / f"{name}.csv")}
    assert not labelled & set(texts), "distillation would see a labelled (valid or test) text"
    assert DKK / "unlabelled.csv" not in corpus_files(), "builds keep the vocabulary models used"
    assert DKK / "train.csv" in corpus_files()
