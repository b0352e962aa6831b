"""Fit the category head on the in-domain labelled posts (train split; the valid split picks C and the
weight of the rule evidence; the test split is never read here)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from pipeline.enrich.enricher import evidence_matrix, gather_evidence
from pipeline.gazetteer.recognizer import default_gazetteer
from pipeline.model.attribution import ATTRIBUTION_HEAD_FILE
from pipeline.model.category import CATEGORIES, CATEGORY_HEAD_FILE, CategoryModel
from pipeline.model.data import file_info, load_category_labelled
from pipeline.model.encoder import Backend
from pipeline.model.evaluate import evaluate_category
from pipeline.model.heads import remove_head
from pipeline.model.layers import EmbeddingLayer
from pipeline.model.sentiment import META_FILE, Head, SentimentModel, write_meta
from pipeline.model.train import fit_temperature

EVIDENCE_WEIGHTS = (0.25, 0.5, 1.0, 2.0)
C_VALUES = (4.0, 16.0, 64.0)


def category_inputs(
    model: SentimentModel,
    rows: Sequence[dict[str, Any]],
    layer: EmbeddingLayer,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of ``layer`` and rule evidence of ``load_category_labelled`` rows, computed exactly as the
    pipeline does."""
    gazetteer = default_gazetteer()
    evidence = [gather_evidence(gazetteer, str(row["text"])) for row in rows]
    embeddings = model.embed_layer([e.masked.text for e in evidence], layer, progress)
    return embeddings, evidence_matrix(evidence)


def train_category(
    model_dir: Path,
    train: Path,
    valid: Path,
    console: Console,
    backend: Backend = "fp32",
    *,
    threads: int | None = None,
    layer: EmbeddingLayer = "topic",
) -> dict[str, Any]:
    """Fit on the embeddings of ``backend``: the one the pipeline will run the head on. ``layer``: the
    topic layer by default, which sentiment fine-tuning with frozen lower layers leaves unchanged
    (``pipeline.model.layers``)."""
    from sklearn.linear_model import LogisticRegression

    tr_rows, y_tr = load_category_labelled(train)
    va_rows, y_va = load_category_labelled(valid)
    model = SentimentModel.load(model_dir, backend=backend, threads=threads)
    with console.status("embedding the labelled posts"):
        x_tr, ev_tr = category_inputs(model, tr_rows, layer)
        x_va, ev_va = category_inputs(model, va_rows, layer)
    best: tuple[float, float, float, Head] | None = None
    for weight in EVIDENCE_WEIGHTS:
        for c in C_VALUES:
            clf = LogisticRegression(C=c, max_iter=5000)
            clf.fit(np.hstack([x_tr, weight * ev_tr]), y_tr)
            order = [list(clf.classes_).index(label) for label in CATEGORIES]
            head = Head(
                clf.coef_[order].astype(np.float32), clf.intercept_[order].astype(np.float32), CATEGORIES
            )
            accuracy = evaluate_category(CategoryModel(head, weight, layer=layer), x_va, ev_va, y_va).accuracy
            console.print(f"evidence weight {weight:<4} C {c:<5} valid accuracy {accuracy:.3f}")
            if best is None or accuracy > best[0]:
                best = (accuracy, weight, c, head)
    assert best is not None
    accuracy, weight, c, raw_head = best
    # Temperature scaling on valid: 16 classes from ~400 posts leave the probabilities under-confident,
    # and alerts threshold on them.
    x_valid = np.hstack([x_va, weight * ev_va])
    y_index = np.array([CATEGORIES.index(label) for label in y_va])
    temperature = fit_temperature(x_valid @ raw_head.weight.T + raw_head.bias, y_index)
    fitted = CategoryModel(
        Head(raw_head.weight / temperature, raw_head.bias / temperature, CATEGORIES), weight, layer=layer
    )
    fitted.save(model_dir / CATEGORY_HEAD_FILE)
    report = evaluate_category(fitted, x_va, ev_va, y_va)
    summary = {
        "head": "multinomial logistic regression on [embedding, weight × rule evidence]",
        "embeddings_backend": backend,
        "embedding_layer": layer,
        "evidence_weight": weight,
        "C": c,
        "temperature": round(temperature, 4),
        "train": file_info(train) | {"rows": len(y_tr)},
        "valid": file_info(valid)
        | {
            "rows": len(y_va),
            "accuracy": round(report.accuracy, 4),
            "macro_f1": round(report.macro_f1, 4),
        },
    }
    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    meta["category"] = summary
    write_meta(model_dir, meta)
    # the attribution head read the replaced head's probabilities (and maybe another layer): refit it after
    remove_head(model_dir, ATTRIBUTION_HEAD_FILE, console)
    console.print(
        f"category head ({layer} layer): evidence weight {weight}, C {c}, temperature {temperature:.3f}, "
        f"valid accuracy {report.accuracy:.3f}, ECE {report.ece:.3f}"
    )
    return summary
