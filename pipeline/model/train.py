"""Train the sentiment head on frozen e5 embeddings and assemble the shipped model directory.

A linear head on frozen embeddings trains in seconds on CPU, cannot overfit 11k review sentences the way
fine-tuning can, and leaves the encoder identical to the one the topic stage uses, so one encoder pass serves
both. Probabilities are temperature-scaled on the validation split so ``score`` means what it says.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.model.data import (
    DATA_DIR,
    LABELS,
    SMSA_DIR,
    file_info,
    load_labelled,
    read_labelled_files,
)
from pipeline.model.encoder import (
    DEFAULT_MAX_LENGTH,
    Backend,
    TorchEncoder,
    embed_texts,
    load_encoder,
    load_tokenizer,
    write_transformers_code,
)
from pipeline.model.evaluate import EvalReport, metrics_summary, print_report, report_from_proba
from pipeline.model.heads import settle_heads
from pipeline.model.onnx_export import export_onnx
from pipeline.model.packed import PACKED_FILE
from pipeline.model.sentiment import HEAD_FILE, Head, weights_version, write_meta

if TYPE_CHECKING:
    from rich.console import Console
    from tokenizers import Tokenizer
    from transformers import BertModel

BASE_FILES = ("config.json", PACKED_FILE, "tokenizer.json", "tokenizer_config.json", "base_model.json")
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
CLASS_WEIGHTS: tuple[str | None, ...] = (None, "balanced")


def default_test_files() -> dict[str, Path]:
    """Held-out sets reported for a SmSA-trained head (never NusaX-ind: it overlaps SmSA train)."""
    files = {
        "smsa_test": SMSA_DIR / "test_preprocess.tsv",
        "nusax_jav_test": DATA_DIR / "sentiment" / "nusax_senti_jav" / "test.csv",
        "nusax_sun_test": DATA_DIR / "sentiment" / "nusax_senti_sun" / "test.csv",
    }
    indomain = DATA_DIR / "indomain" / "test.jsonl"
    if indomain.exists():
        files["indomain_test"] = indomain
    return files


@dataclass(frozen=True)
class Fitted:
    head: Head
    c: float
    class_weight: str | None
    temperature: float
    valid_before: EvalReport
    valid_after: EvalReport


def _embed(
    encoder: BertModel, tok: Tokenizer, texts: list[str], what: str, console: Console, **kw: Any
) -> np.ndarray:
    from pipeline.report import progress_bar

    with progress_bar(console) as progress:
        task = progress.add_task(f"embedding {what}", total=len(texts))
        pair = embed_texts(
            TorchEncoder(encoder), tok, texts, progress=lambda n: progress.advance(task, n), **kw
        )
        return pair[:, 0]


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return np.asarray(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))


def fit_temperature(logits: np.ndarray, y: np.ndarray, groups: Sequence[str] | None = None) -> float:
    """Temperature minimising validation NLL (log-spaced grid then a finer one around the best).

    With ``groups`` (one name per row, e.g. the domain of each validation file) each group weighs the same
    in the NLL, so a few hundred real posts are not outvoted by thousands of reviews.
    """
    weights = np.full(len(y), 1.0 / max(len(y), 1))
    if groups is not None:
        if len(groups) != len(y):
            raise ValueError(f"{len(groups)} groups for {len(y)} rows")
        names, index, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
        weights = 1.0 / (len(names) * counts[index])

    def nll(t: float) -> float:
        return float(-(_log_softmax(logits / t)[np.arange(len(y)), y] * weights).sum())

    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 80))
    best = float(min(grid, key=nll))
    fine = np.linspace(best * 0.9, best * 1.1, 41)
    return float(min(fine, key=nll))


def fit_head(x_tr: np.ndarray, y_tr: Sequence[str], x_va: np.ndarray, y_va: Sequence[str]) -> Fitted:
    """Choose C and class weighting on validation macro-F1, then temperature-scale on validation."""
    from sklearn.linear_model import LogisticRegression

    index = {c: i for i, c in enumerate(LABELS)}
    ytr = np.array([index[v] for v in y_tr])
    yva = np.array([index[v] for v in y_va])
    best: tuple[float, float, str | None, Any] | None = None
    for cw in CLASS_WEIGHTS:
        for c in C_GRID:
            clf = LogisticRegression(C=c, class_weight=cw, max_iter=3000)
            clf.fit(x_tr, ytr)
            f1 = report_from_proba(clf.predict_proba(x_va), y_va).macro_f1
            if best is None or f1 > best[0]:
                best = (f1, c, cw, clf)
    assert best is not None
    _, c, cw, clf = best
    weight = clf.coef_.astype(np.float64)
    bias = clf.intercept_.astype(np.float64)
    logits = x_va @ weight.T + bias
    t = fit_temperature(logits, yva)
    before = Head(weight, bias)
    after = Head(weight / t, bias / t)
    return Fitted(
        head=after,
        c=c,
        class_weight=cw,
        temperature=t,
        valid_before=report_from_proba(before.probabilities(x_va), y_va),
        valid_after=report_from_proba(after.probabilities(x_va), y_va),
    )


def train_sentiment(
    base_dir: Path,
    out_dir: Path,
    console: Console,
    *,
    train_files: Sequence[Path],
    valid_files: Sequence[Path],
    test_files: dict[str, Path] | None = None,
    backend: Backend = "fp32",
    threads: int = 2,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> Path:
    """Embed, fit and calibrate the head, copy the encoder next to it and record data and metrics."""
    import torch

    torch.set_num_threads(threads)
    base_meta = json.loads((base_dir / "base_model.json").read_text(encoding="utf-8"))
    prefix = str(base_meta.get("prefix", "query: "))
    encoder = load_encoder(base_dir, backend)
    tok = load_tokenizer(base_dir)
    kw: dict[str, Any] = {"prefix": prefix, "max_length": max_length}

    x_texts, y_tr = read_labelled_files(train_files)
    v_texts, y_va = read_labelled_files(valid_files)
    console.print(f"train: {len(x_texts):,} texts from {[str(p) for p in train_files]}")
    console.print(f"valid: {len(v_texts):,} texts from {[str(p) for p in valid_files]}")
    x_tr = _embed(encoder, tok, x_texts, "train", console, **kw)
    x_va = _embed(encoder, tok, v_texts, "valid", console, **kw)
    with console.status("fitting logistic regression …"):
        fitted = fit_head(x_tr, y_tr, x_va, y_va)
    console.print(
        f"head: C={fitted.c}, class_weight={fitted.class_weight}, temperature={fitted.temperature:.3f}; "
        f"valid macro-F1 {fitted.valid_after.macro_f1:.4f}, "
        f"ECE {fitted.valid_before.ece:.4f} → {fitted.valid_after.ece:.4f}"
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    settle_heads(base_dir, out_dir, frozenset(), console)  # heads in out_dir read another encoder
    for name in BASE_FILES:
        if (base_dir / name).resolve() != (out_dir / name).resolve():
            shutil.copyfile(base_dir / name, out_dir / name)
    write_transformers_code(out_dir)
    fitted.head.save(out_dir / HEAD_FILE, {"temperature": f"{fitted.temperature:.6f}"})
    export_onnx(out_dir, console)

    metrics: dict[str, Any] = {"valid": metrics_summary(fitted.valid_after)}
    for name, path in (test_files if test_files is not None else default_test_files()).items():
        texts, labels = load_labelled(path)
        proba = fitted.head.probabilities(_embed(encoder, tok, texts, name, console, **kw))
        report = report_from_proba(proba, labels)
        print_report(report, console, title=f"{name} ({path.name})")
        metrics[name] = metrics_summary(report)

    meta = {
        "version": weights_version(out_dir),
        "task": "sentiment",
        "labels": list(LABELS),
        "base": base_meta,
        "prefix": prefix,
        "pooling": "mean over tokens, L2-normalised",
        "max_length": max_length,
        "backend_at_training": backend,
        "head": {
            "type": "multinomial logistic regression on frozen embeddings, temperature folded in",
            "C": fitted.c,
            "class_weight": fitted.class_weight,
            "temperature": round(fitted.temperature, 6),
            "valid_ece_before_temperature": round(fitted.valid_before.ece, 4),
        },
        "data": {
            "train": [file_info(p) | {"rows": n} for p, n in _counts(train_files)],
            "valid": [file_info(p) | {"rows": n} for p, n in _counts(valid_files)],
            "indomain_included": any("indomain" in str(p) for p in train_files),
        },
        "metrics": metrics,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_meta(out_dir, meta)
    for path in out_dir.iterdir():
        path.chmod(0o644)
    console.print(f"[bold green]model {meta['version']} written to {out_dir}[/]")
    return out_dir


def _counts(files: Sequence[Path]) -> list[tuple[Path, int]]:
    return [(p, len(load_labelled(p)[0])) for p in files]
