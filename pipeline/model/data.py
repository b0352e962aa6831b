"""Readers for the labelled-text formats we train and evaluate on (SmSA TSV, NusaX CSV, JSONL)."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.corrections import CORRECTIONS_FILE
from pipeline.model.category import CATEGORIES
from pipeline.model.sentiment import LABELS
from pipeline.settings import DEFAULT_MODEL_DIR, REPO_ROOT
from pipeline.sources.files import csv_dict_reader

__all__ = ["CORRECTIONS_FILE", "DEFAULT_MODEL_DIR", "REPO_ROOT"]

DATA_DIR = REPO_ROOT / "data"
SMSA_DIR = DATA_DIR / "sentiment" / "smsa"
INDOMAIN_DIR = DATA_DIR / "indomain"


def _undecodable_line(path: Path) -> int:
    """Line of the first byte that is not UTF-8: text-mode reading decodes in chunks and cannot say."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return 1


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line; every error names ``path:line``.

    ``utf-8-sig`` so that a byte-order mark (as Windows editors write) is not read as part of the first line.
    """
    try:
        with path.open(encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
                if not isinstance(rec, dict):
                    raise ValueError(f"{path}:{lineno}: expected a JSON object")
                yield lineno, rec
    except UnicodeDecodeError:
        raise ValueError(f"{path}:{_undecodable_line(path)}: not UTF-8 text") from None


def record_text(path: Path, lineno: int, rec: dict[str, Any]) -> str:
    """The non-empty ``text`` of a JSONL record."""
    text = rec.get("text")
    if not isinstance(text, str):
        raise ValueError(f"{path}:{lineno}: expected an object with a string 'text'")
    return _nonempty(path, lineno, text)


def _nonempty(path: Path, lineno: int, text: str) -> str:
    if not text.strip():
        raise ValueError(f"{path}:{lineno}: empty text")
    return text


def _rows(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """Yield (line, text, label-or-None) from a .tsv (text<TAB>label), a .csv (a ``text`` or ``tweet`` column,
    optionally ``label`` or ``sentiment``) or a .jsonl (``text``, optionally ``label`` or ``sentiment``)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for lineno, rec in read_jsonl(path):
            text = record_text(path, lineno, rec)
            label = rec.get("label", rec.get("sentiment"))
            if isinstance(label, dict):  # {"label": ..., "score": ...} as in EnrichedPost
                label = label.get("label")
            yield lineno, text, (str(label) if label is not None else None)
        return
    if suffix not in (".csv", ".tsv"):
        raise ValueError(f"{path}: unsupported format (use .tsv, .csv or .jsonl)")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            if suffix == ".csv":
                yield from _csv_rows(path, csv_dict_reader(fh))
                return
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                text, sep, label = line.rpartition("\t")
                if not sep:
                    raise ValueError(f"{path}:{lineno}: expected text<TAB>label")
                yield lineno, _nonempty(path, lineno, text), label
    except UnicodeDecodeError:
        raise ValueError(f"{path}:{_undecodable_line(path)}: not UTF-8 text") from None


def _csv_rows(path: Path, reader: csv.DictReader[str]) -> Iterator[tuple[int, str, str | None]]:
    """Rows of a CSV; one the csv module cannot parse (an unclosed quote) is an error at its line."""
    try:
        columns = reader.fieldnames or []
        text_key = next((c for c in ("text", "tweet") if c in columns), None)
        if text_key is None:
            raise ValueError(f"{path}:1: CSV needs a 'text' or 'tweet' column (found {columns})")
        label_key = next((c for c in ("label", "sentiment") if c in columns), None)
        for row in reader:
            text = _nonempty(path, reader.line_num, row.get(text_key) or "")
            yield reader.line_num, text, row.get(label_key) if label_key else None
    except csv.Error as exc:
        raise ValueError(f"{path}:{reader.reader.line_num}: not valid CSV ({exc})") from None


def read_texts(path: Path) -> list[str]:
    """All texts of a file, labelled or not (used to choose which vocabulary pieces to keep)."""
    return [text for _, text, _ in _rows(path)]


def load_unlabelled(path: Path) -> list[str]:
    """Texts to distil on (``--unlabelled``): a file with a labelled row is refused (a labelled file given
    there, such as a validation split, would be trained on without its labels), and so is one with no rows."""
    texts: list[str] = []
    for lineno, text, label in _rows(path):
        if label is not None and label.strip():
            raise ValueError(
                f"{path}:{lineno}: labelled row ({label!r}) in an unlabelled file; give labelled files "
                "with --data"
            )
        texts.append(text)
    if not texts:
        raise ValueError(f"{path}: no rows (empty, or a wrong delimiter or columns)")
    return texts


def no_labelled_rows(path: Path, skipped: int) -> ValueError:
    """The error for a file that gave nothing to train or score on (empty, wrong delimiter or columns)."""
    why = f"{skipped} row(s) without a label skipped" if skipped else "empty, or a wrong delimiter or columns"
    return ValueError(f"{path}: no labelled rows ({why})")


def load_labelled(path: Path) -> tuple[list[str], list[str]]:
    """Texts and sentiment labels; rows without a label are skipped, unknown labels are an error, and so is
    a file without a labelled row (it would score 0 or silently drop out of training)."""
    texts: list[str] = []
    labels: list[str] = []
    skipped = 0
    for lineno, text, label in _rows(path):
        if label is None or label == "":
            skipped += 1
            continue
        norm = label.strip().lower()
        if norm not in LABELS:
            raise ValueError(f"{path}:{lineno}: unknown sentiment label {label!r} (expected one of {LABELS})")
        texts.append(text)
        labels.append(norm)
    if not texts:
        raise no_labelled_rows(path, skipped)
    return texts, labels


def read_labelled_files(files: Sequence[Path]) -> tuple[list[str], list[str]]:
    """Texts and labels of several files, in order: what the trainers train and validate on."""
    texts: list[str] = []
    labels: list[str] = []
    for path in files:
        t, y = load_labelled(path)
        texts += t
        labels += y
    return texts, labels


def file_info(path: Path) -> dict[str, Any]:
    """Path (relative to the repository when inside it) and SHA-256: how a model card names its data."""
    rel = path.resolve().relative_to(REPO_ROOT) if path.resolve().is_relative_to(REPO_ROOT) else path
    return {"path": str(rel), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def default_train_files() -> list[Path]:
    """SmSA train, plus the in-domain train set once a colleague has written it (never its test split), plus
    the analysts' corrections of ``pantau label import`` once there are any."""
    files = [SMSA_DIR / "train_preprocess.tsv"]
    indomain = INDOMAIN_DIR / "train.jsonl"
    if indomain.exists():
        files.append(indomain)
    if has_corrections(CORRECTIONS_FILE):
        files.append(CORRECTIONS_FILE)
    return files


def has_corrections(path: Path) -> bool:
    """A corrections file with a record in it: an empty one is "no labelled rows" to the readers."""
    try:
        return any(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    except OSError:
        return False


def default_valid_files() -> list[Path]:
    files = [SMSA_DIR / "valid_preprocess.tsv"]
    indomain = INDOMAIN_DIR / "valid.jsonl"
    if indomain.exists():
        files.append(indomain)
    return files


def corpus_files(root: Path = REPO_ROOT) -> list[Path]:
    """Text the trimmed vocabulary must cover: the repo's sentiment and in-domain data and the sample posts.

    Test splits are left out so that test scores include the cost of words the vocabulary never saw, and
    unlabelled comments (distillation only) so that a build stays the one the shipped models were trained on.
    """
    data = root / "data"
    files = sorted(p for p in (data / "sentiment").rglob("*") if p.suffix in (".tsv", ".csv"))
    files += sorted((data / "indomain").glob("*.jsonl"))
    files = [p for p in files if "test" not in p.stem and "unlabelled" not in p.stem]
    samples = root / "pipeline" / "samples" / "posts.jsonl"
    if samples.exists():
        files.append(samples)
    return files


def load_category_labelled(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """JSONL rows with ``text`` and ``category`` (or ``label``); unknown or missing categories fail loudly,
    naming ``path:line``."""
    if path.suffix.lower() != ".jsonl":
        raise ValueError(f"{path}: the category task reads JSONL (one object per line: text + category)")
    rows, labels = [], []
    for number, row in read_jsonl(path):
        record_text(path, number, row)
        label = row.get("category", row.get("label"))
        if label not in CATEGORIES:
            raise ValueError(f"{path}:{number}: category {label!r} is not one of {', '.join(CATEGORIES)}")
        rows.append(row)
        labels.append(label)
    if not rows:
        raise no_labelled_rows(path, 0)
    return rows, labels
