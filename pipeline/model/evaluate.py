"""Score a sentiment model on a labelled file: macro-F1 (SmSA's headline metric), accuracy, calibration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.model.data import LABELS
from pipeline.model.data import load_labelled as _load_labelled

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.model.sentiment import SentimentModel

ECE_BINS = 15


def load_labelled(path: Path) -> tuple[list[str], list[str]]:
    """SmSA TSV (text<TAB>label), NusaX-style CSV (id,text,label) or JSONL (text + label or sentiment)."""
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    )


def evaluate(model: SentimentModel, texts: Sequence[str], labels: Sequence[str]) -> EvalReport:
    if len(texts) != len(labels):
        raise ValueError("texts and labels differ in length")
    return report_from_proba(model.predict_proba(texts), labels, model.head.labels)


def print_report(report: EvalReport, console: Console, title: str = "evaluation") -> None:
    from rich.table import Table

    summary = Table(title=title, show_header=False)
    summary.add_row("texts", str(report.n))
    summary.add_row("macro-F1", f"{report.macro_f1:.4f}")
    summary.add_row("accuracy", f"{report.accuracy:.4f}")
    summary.add_row(f"ECE ({ECE_BINS} bins)", f"{report.ece:.4f}")
    console.print(summary)

    per = Table(title="per class")
    for col in ("label", "precision", "recall", "F1", "support"):
        per.add_column(col, justify="left" if col == "label" else "right")
    for label, s in report.per_class.items():
        per.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    console.print(per)

    cm = Table(title="confusion (rows: true, columns: predicted)")
    cm.add_column("")
    for label in report.labels:
        cm.add_column(label, justify="right")
    for label, row in zip(report.labels, report.confusion, strict=True):
        cm.add_row(label, *(str(v) for v in row))
    console.print(cm)
