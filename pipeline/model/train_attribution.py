"""Fit the attribution head on the in-domain labelled posts: every candidate agency of a train post is an
example, kept when the post's ``agencies`` label holds it. The valid split picks C and the thresholds; the
test split is never read here."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from pipeline.enrich.enricher import evidence_matrix, gather_evidence
from pipeline.gazetteer.recognizer import default_gazetteer
from pipeline.model.attribution import ATTRIBUTION_HEAD_FILE, AttributionModel, candidate_features, candidates
from pipeline.model.category import CategoryModel
from pipeline.model.data import file_info, read_jsonl, record_text
from pipeline.model.encoder import Backend
from pipeline.model.sentiment import META_FILE, SentimentModel, write_meta
from schemas.vocab import Agency

C_VALUES = (0.25, 1.0, 4.0, 16.0)
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.2, 0.81, 0.05))


@dataclass(frozen=True)
class AttributionExamples:
    """What the head sees of a labelled file: per post its embedding, category probabilities, the agencies
    the gazetteer named (Banten offices only) and the labelled agencies."""

    texts: list[str]
    """As masked for the models."""
    embeddings: np.ndarray
    category_proba: np.ndarray
    named: list[list[Agency]]
    addressed: list[list[Agency]]
    elsewhere: list[list[Agency] | None]
    """``Recognition.elsewhere`` of each post."""
    gold: list[set[Agency]]


def load_attribution_labelled(path: Path) -> tuple[list[str], list[set[Agency]]]:
    """Texts and ``agencies`` labels of an in-domain JSONL file; an unknown agency id names ``path:line``."""
    texts, gold = [], []
    for lineno, row in read_jsonl(path):
        texts.append(record_text(path, lineno, row))
        try:
            gold.append({Agency(a) for a in row.get("agencies") or []})
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from None
    return texts, gold


def attribution_examples(model: SentimentModel, category: CategoryModel, path: Path) -> AttributionExamples:
    """Computed as the pipeline computes them (``Enricher.enrich_with_embeddings``)."""
    texts, gold = load_attribution_labelled(path)
    gazetteer = default_gazetteer()
    evidence = [gather_evidence(gazetteer, text) for text in texts]
    masked = [e.masked.text for e in evidence]
    embeddings = model.embed(masked)
    proba = category.probabilities(embeddings, evidence_matrix(evidence))
    named = [list(e.found.agencies) for e in evidence]
    addressed = [list(e.found.addressed) for e in evidence]
    elsewhere = [e.found.elsewhere for e in evidence]
    return AttributionExamples(masked, embeddings, proba, named, addressed, elsewhere, gold)


def candidate_rows(data: AttributionExamples) -> tuple[np.ndarray, np.ndarray]:
    features, labels = [], []
    posts = zip(data.texts, data.embeddings, data.category_proba, data.named, data.gold, strict=True)
    for text, emb, proba, named, gold in posts:
        found = candidates(named, proba)
        if found:
            features.append(candidate_features(emb, proba, found, text))
            labels += [cand.agency in gold for cand in found]
    width = data.embeddings.shape[1]
    return (np.vstack(features) if features else np.zeros((0, width))), np.array(labels, dtype=bool)


@dataclass(frozen=True)
class AttributionScore:
    tp: int
    fp: int
    fn: int

    @property
    def micro_f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0


def score_attribution(predicted: Sequence[Sequence[Agency]], gold: Sequence[set[Agency]]) -> AttributionScore:
    tp = fp = fn = 0
    for pred, want in zip(predicted, gold, strict=True):
        got = set(pred)
        tp += len(got & want)
        fp += len(got - want)
        fn += len(want - got)
    return AttributionScore(tp, fp, fn)


def per_agency(
    predicted: Sequence[Sequence[Agency]], gold: Sequence[set[Agency]]
) -> dict[Agency, AttributionScore]:
    """Each agency's own errors (the README publishes them)."""
    counts: dict[Agency, list[int]] = {}
    for pred, want in zip(predicted, gold, strict=True):
        got = set(pred)
        for agency in got | want:
            row = counts.setdefault(agency, [0, 0, 0])
            row[0 if agency in got and agency in want else 1 if agency in got else 2] += 1
    return {agency: AttributionScore(*counts[agency]) for agency in sorted(counts, key=lambda a: a.value)}


def attribute_all(model: AttributionModel | None, data: AttributionExamples) -> list[list[Agency]]:
    """Every post's agencies with ``model`` (None: the gazetteer's named agencies, the rule baseline)."""
    if model is None:
        return [list(named) for named in data.named]
    posts = zip(
        data.texts,
        data.embeddings,
        data.category_proba,
        data.named,
        data.addressed,
        data.elsewhere,
        strict=True,
    )
    return [
        model.attribute(emb, proba, named, text, tagged, away)
        for text, emb, proba, named, tagged, away in posts
    ]


def train_attribution(
    model_dir: Path,
    train: Path,
    valid: Path,
    console: Console,
    backend: Backend = "fp32",
    *,
    threads: int | None = None,
) -> dict[str, Any]:
    """Fit on ``backend``'s embeddings (the one the pipeline runs) and the shipped category head."""
    from sklearn.linear_model import LogisticRegression

    model = SentimentModel.load(model_dir, backend=backend, threads=threads)
    category = CategoryModel.load(model_dir)
    with console.status("embedding the labelled posts"):
        tr = attribution_examples(model, category, train)
        va = attribution_examples(model, category, valid)
    x_tr, y_tr = candidate_rows(tr)
    rules = score_attribution(attribute_all(None, va), va.gold)
    console.print(f"gazetteer alone: valid micro-F1 {rules.micro_f1:.3f}")
    # (F1, closeness of both thresholds to even odds, C, head): of thresholds that score alike, the ones
    # nearest 0.5, since a valid split of 90 posts cannot tell them apart
    best: tuple[float, float, float, AttributionModel] | None = None
    for c in C_VALUES:
        clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
        clf.fit(x_tr, y_tr)
        weight = clf.coef_[0].astype(np.float32)
        for named_at, implied_at in itertools.product(THRESHOLDS, THRESHOLDS):
            head = AttributionModel(weight, float(clf.intercept_[0]), float(named_at), float(implied_at))
            f1 = round(score_attribution(attribute_all(head, va), va.gold).micro_f1, 6)
            even = -abs(named_at - 0.5) - abs(implied_at - 0.5)
            if best is None or (f1, even) > (best[0], best[1]):
                best = (f1, even, c, head)
        assert best is not None
        console.print(f"C {c:<5} best so far: valid micro-F1 {best[0]:.3f}")
    assert best is not None
    f1, _, c, head = best
    head.save(model_dir / ATTRIBUTION_HEAD_FILE, metadata={"C": str(c)})
    summary = {
        "head": "logistic regression per candidate agency on [embedding, candidate evidence]",
        "embeddings_backend": backend,
        "C": c,
        "threshold": head.threshold,
        "implied_threshold": head.implied_threshold,
        "train": file_info(train) | {"posts": len(tr.gold), "candidates": len(y_tr)},
        "valid": file_info(valid)
        | {"posts": len(va.gold), "micro_f1": round(f1, 4), "gazetteer_micro_f1": round(rules.micro_f1, 4)},
    }
    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    meta["attribution"] = summary
    write_meta(model_dir, meta)
    console.print(
        f"attribution head: C {c}, thresholds {head.threshold} named / {head.implied_threshold} implied, "
        f"valid micro-F1 {f1:.3f} "
        f"(gazetteer {rules.micro_f1:.3f})"
    )
    return summary
