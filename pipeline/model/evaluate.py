"""Score the sentiment model or the category head on labelled files: macro-F1 (SmSA's headline metric),
accuracy, calibration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.model.category import CATEGORIES, decision_proba
from pipeline.model.data import load_labelled as _load_labelled
from pipeline.model.sentiment import LABELS
from pipeline.tables import aligned, print_table

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.model.category import CategoryModel
    from pipeline.model.sentiment import SentimentModel

ECE_BINS = 15
BOOTSTRAP_RESAMPLES = 1000


def load_labelled(path: Path) -> tuple[list[str], list[str]]:
    """SmSA TSV (text<TAB>label), CSV (text or tweet + label or sentiment) or JSONL (text + label or
    sentiment)."""
    return _load_labelled(path)


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    n: int
    macro_f1: float
    accuracy: float
    ece: float
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]
    """Rows are true labels, columns predicted labels, both in ``labels`` order."""
    labels: tuple[str, ...] = LABELS
    macro_f1_95: tuple[float, float] = (0.0, 0.0)
    """95 % bootstrap interval of ``macro_f1``: models whose scores differ by less are not told apart by
    this set (500 SmSA test posts: about ±0.035)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def metrics_summary(r: EvalReport) -> dict[str, Any]:
    """The scores a model description records for one split (``metrics`` in ``pantau_model.json``)."""
    return {
        "n": r.n,
        "macro_f1": round(r.macro_f1, 4),
        "accuracy": round(r.accuracy, 4),
        "ece": round(r.ece, 4),
        "per_class_f1": {k: round(v.f1, 4) for k, v in r.per_class.items()},
        "confusion": r.confusion,
    }


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: confidence-vs-accuracy gap averaged over equal-width confidence bins."""
    if len(y) == 0:
        return 0.0
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def _macro_f1_of_counts(cm: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Macro-F1 of confusion matrices ``(..., k, k)`` over the classes ``present`` in the full set."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    denom = cm.sum(axis=-1) + cm.sum(axis=-2)  # 2·tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return np.asarray(f1[..., present].mean(axis=-1))


def macro_f1_interval(
    y: np.ndarray, pred: np.ndarray, k: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """2.5th and 97.5th percentile of macro-F1 over posts resampled with replacement (fixed seed)."""
    n = len(y)
    if n == 0:
        return (0.0, 0.0)
    present = np.bincount(y, minlength=k) > 0
    codes = (y * k + pred).astype(np.int64)
    rng = np.random.default_rng(seed)
    scores = []
    for start in range(0, resamples, 100):  # bounded memory on large sets
        r = min(100, resamples - start)
        picked = codes[rng.integers(0, n, (r, n))] + (np.arange(r) * k * k)[:, None]
        cm = np.bincount(picked.ravel(), minlength=r * k * k).reshape(r, k, k)
        scores.append(_macro_f1_of_counts(cm, present))
    low, high = np.percentile(np.concatenate(scores), [2.5, 97.5])
    return (float(low), float(high))


def report_from_proba(
    proba: np.ndarray, labels: Sequence[str], classes: Sequence[str] = LABELS
) -> EvalReport:
    """All metrics from predicted probabilities (columns in ``classes`` order) and true labels."""
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[lab] for lab in labels], dtype=np.int64)
    pred = proba.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    per_class: dict[str, ClassScores] = {}
    for i, c in enumerate(classes):
        tp = cm[i, i]
        p = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        r = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        per_class[c] = ClassScores(float(p), float(r), float(f), int(cm[i, :].sum()))
    present = [s.f1 for s in per_class.values() if s.support > 0]
    return EvalReport(
        n=len(y),
        macro_f1=float(np.mean(present)) if present else 0.0,
        accuracy=float((pred == y).mean()) if len(y) else 0.0,
        ece=expected_calibration_error(proba, y),
        per_class=per_class,
        confusion=cm.tolist(),
        labels=tuple(classes),
        macro_f1_95=macro_f1_interval(y, pred, k),
    )


def evaluate(
    model: SentimentModel,
    texts: Sequence[str],
    labels: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """``progress`` is told how many texts each batch finished (a progress bar's ``advance``)."""
    if len(texts) != len(labels):
        raise ValueError("texts and labels differ in length")
    return report_from_proba(model.predict_proba(texts, progress), labels, model.head.labels)


def print_report(report: EvalReport, console: Console, title: str = "evaluation") -> None:
    low, high = report.macro_f1_95
    summary: list[list[object]] = [
        ["texts", report.n],
        ["macro-F1", f"{report.macro_f1:.4f}"],
        ["macro-F1 95 % interval", f"{low:.3f}–{high:.3f} (bootstrap)"],
        ["accuracy", f"{report.accuracy:.4f}"],
        [f"ECE ({ECE_BINS} bins)", f"{report.ece:.4f}"],
    ]
    print_table(console, ["", title], summary)
    per = [
        [label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", s.support]
        for label, s in report.per_class.items()
    ]
    print_table(console, ["label", "precision", "recall", "F1", "support"], per, title="per class")

    # as plain columns: a rich table squeezed into the terminal cut the labels to "a…" and "k…"
    console.print("confusion (rows: true, columns: predicted)", markup=False, highlight=False)
    rows = [[label, *row] for label, row in zip(report.labels, report.confusion, strict=True)]
    console.print(aligned(["", *report.labels], rows), soft_wrap=True, markup=False, highlight=False)


def evaluate_category(
    model: CategoryModel, embeddings: np.ndarray, evidence: np.ndarray, labels: Sequence[str]
) -> EvalReport:
    return report_from_proba(decision_proba(model.probabilities(embeddings, evidence)), labels, CATEGORIES)
