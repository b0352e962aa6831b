"""Readers for the labelled-text formats we train and evaluate on (SmSA TSV, NusaX CSV, JSONL)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from pipeline.settings import DEFAULT_MODEL_DIR, REPO_ROOT

__all__ = ["DEFAULT_MODEL_DIR", "REPO_ROOT"]

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
DATA_DIR = REPO_ROOT / "data"
SMSA_DIR = DATA_DIR / "sentiment" / "smsa"
INDOMAIN_DIR = DATA_DIR / "indomain"


def _rows(path: Path) -> Iterator[tuple[str, str | None]]:
    """Yield (text, label-or-None) from a .tsv (text<TAB>label), .csv (with a text column) or .jsonl."""
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8", newline="") as fh:
        if suffix == ".jsonl":
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rec = json.loads(line)
                if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                    raise ValueError(f"{path}:{lineno}: expected an object with a string 'text'")
                label = rec.get("label", rec.get("sentiment"))
                if isinstance(label, dict):  # {"label": ..., "score": ...} as in EnrichedPost
                    label = label.get("label")
                yield rec["text"], (str(label) if label is not None else None)
        elif suffix == ".csv":
            for row in csv.DictReader(fh):
                text = row.get("text") or row.get("tweet")
                if text is None:
                    raise ValueError(f"{path}: CSV needs a 'text' column")
                yield text, row.get("label")
        elif suffix == ".tsv":
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                text, sep, label = line.rpartition("\t")
                if not sep:
                    raise ValueError(f"{path}:{lineno}: expected text<TAB>label")
                yield text, label
        else:
            raise ValueError(f"{path}: unsupported format (use .tsv, .csv or .jsonl)")


def read_texts(path: Path) -> list[str]:
    """All texts of a file, labelled or not (used to choose which vocabulary pieces to keep)."""
    return [text for text, _ in _rows(path)]


def load_labelled(path: Path) -> tuple[list[str], list[str]]:
    """Texts and sentiment labels; rows without a label are skipped, unknown labels are an error."""
    texts: list[str] = []
    labels: list[str] = []
    for text, label in _rows(path):
        if label is None or label == "":
            continue
        norm = label.strip().lower()
        if norm not in LABELS:
            raise ValueError(f"{path}: unknown sentiment label {label!r} (expected one of {LABELS})")
        texts.append(text)
        labels.append(norm)
    return texts, labels


def default_train_files() -> list[Path]:
    """SmSA train, plus the in-domain train set once a colleague has written it (never its test split)."""
    files = [SMSA_DIR / "train_preprocess.tsv"]
    indomain = INDOMAIN_DIR / "train.jsonl"
    if indomain.exists():
        files.append(indomain)
    return files


def default_valid_files() -> list[Path]:
    files = [SMSA_DIR / "valid_preprocess.tsv"]
    indomain = INDOMAIN_DIR / "valid.jsonl"
    if indomain.exists():
        files.append(indomain)
    return files


def corpus_files(root: Path = REPO_ROOT) -> list[Path]:
    """Text the trimmed vocabulary must cover: the repo's sentiment and in-domain data and the sample posts.

    Test splits are left out so that test scores include the cost of words the vocabulary never saw.
    """
    data = root / "data"
    files = sorted(p for p in (data / "sentiment").rglob("*") if p.suffix in (".tsv", ".csv"))
    files += sorted((data / "indomain").glob("*.jsonl"))
    files = [p for p in files if "test" not in p.stem]
    samples = root / "pipeline" / "samples" / "posts.jsonl"
    if samples.exists():
        files.append(samples)
    return files
