"""Fit the attribution head on the in-domain labelled posts: every candidate agency of a post is an
example, kept when the post's ``agencies`` label holds it. C and the two thresholds are chosen by 5-fold
cross-validation over train and valid together (a 110-post valid split alone could not tell settings apart;
C by the one-standard-error rule), then the head is fitted on both; the test split is never read here."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from pipeline.enrich.enricher import category_probabilities, gather_evidence
from pipeline.gazetteer.recognizer import default_gazetteer
from pipeline.model.attribution import (
    ATTRIBUTION_HEAD_FILE,
    AttributionModel,
    Candidate,
    candidate_features,
    candidates,
    kept,
)
from pipeline.model.category import CategoryModel
from pipeline.model.data import file_info, read_jsonl, record_text
from pipeline.model.encoder import Backend
from pipeline.model.evaluate import BOOTSTRAP_RESAMPLES
from pipeline.model.sentiment import META_FILE, SentimentModel, write_meta
from schemas.vocab import Agency

C_VALUES = (0.25, 1.0, 4.0, 16.0, 64.0)
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.2, 0.81, 0.05))
FOLDS = 5
FOLD_SEED = 0


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
    likened: list[list[Agency]]
    """``Recognition.likened`` of each post."""
    gold: list[set[Agency]]

    def __add__(self, other: AttributionExamples) -> AttributionExamples:
        return AttributionExamples(
            self.texts + other.texts,
            np.vstack([self.embeddings, other.embeddings]),
            np.vstack([self.category_proba, other.category_proba]),
            self.named + other.named,
            self.addressed + other.addressed,
            self.elsewhere + other.elsewhere,
            self.likened + other.likened,
            self.gold + other.gold,
        )


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
    """Computed as the pipeline computes them (``Enricher.enrich_with_embeddings``); the embeddings of the
    layer the category head reads, which the attribution head reads too."""
    texts, gold = load_attribution_labelled(path)
    gazetteer = default_gazetteer()
    evidence = [gather_evidence(gazetteer, text) for text in texts]
    masked = [e.masked.text for e in evidence]
    embeddings = model.embed_layer(masked, category.layer)
    proba = category_probabilities(category, embeddings, evidence)
    named = [list(e.found.agencies) for e in evidence]
    addressed = [list(e.found.addressed) for e in evidence]
    elsewhere = [e.found.elsewhere for e in evidence]
    likened = [list(e.found.likened) for e in evidence]
    return AttributionExamples(masked, embeddings, proba, named, addressed, elsewhere, likened, gold)


@dataclass(frozen=True)
class CandidateRows:
    """Every candidate of every post as the head sees it, with where it came from."""

    features: np.ndarray
    labels: np.ndarray
    post: np.ndarray
    """Index of the candidate's post."""
    found: list[Candidate]


def candidate_rows(data: AttributionExamples) -> CandidateRows:
    """The candidates exactly as ``AttributionModel.attribute`` builds them."""
    features, labels, post, found_all = [], [], [], []
    posts = zip(
        data.texts,
        data.embeddings,
        data.category_proba,
        data.named,
        data.elsewhere,
        data.likened,
        data.gold,
        strict=True,
    )
    for index, (text, emb, proba, named, away, likened, gold) in enumerate(posts):
        found = candidates(named, proba, away, likened)
        if found:
            features.append(candidate_features(emb, proba, found, text))
            labels += [cand.agency in gold for cand in found]
            post += [index] * len(found)
            found_all += found
    width = data.embeddings.shape[1]
    return CandidateRows(
        np.vstack(features) if features else np.zeros((0, width)),
        np.array(labels, dtype=bool),
        np.array(post, dtype=np.int64),
        found_all,
    )


def decide(
    data: AttributionExamples, rows: CandidateRows, proba: np.ndarray, named_at: float, implied_at: float
) -> list[list[Agency]]:
    """Each post's agencies from its candidates' probabilities, as ``AttributionModel.attribute`` decides."""
    out: list[list[Agency]] = [[] for _ in data.gold]
    for p, index, cand in zip(proba, rows.post, rows.found, strict=True):
        if kept(cand, float(p), data.addressed[index], named_at, implied_at):
            out[index].append(cand.agency)
    return out


def best_thresholds(
    data: AttributionExamples, rows: CandidateRows, proba: np.ndarray
) -> tuple[float, float, float]:
    """(micro-F1, named threshold, implied threshold); of thresholds that score alike, the ones nearest
    even odds."""
    best: tuple[float, float, float, float] | None = None
    for named_at, implied_at in itertools.product(THRESHOLDS, THRESHOLDS):
        f1 = round(score_attribution(decide(data, rows, proba, named_at, implied_at), data.gold).micro_f1, 6)
        even = -abs(named_at - 0.5) - abs(implied_at - 0.5)
        if best is None or (f1, even) > (best[0], best[1]):
            best = (f1, even, float(named_at), float(implied_at))
    assert best is not None
    return best[0], best[2], best[3]


def standard_error(predicted: Sequence[Sequence[Agency]], gold: Sequence[set[Agency]]) -> float:
    """Bootstrap standard error of micro-F1, posts resampled (``BOOTSTRAP_RESAMPLES`` draws, seed 0)."""
    counts = np.array(
        [[len(set(p) & g), len(set(p) - g), len(g - set(p))] for p, g in zip(predicted, gold, strict=True)]
    )
    rng = np.random.default_rng(0)
    draws = [
        AttributionScore(
            *(int(n) for n in counts[rng.integers(0, len(counts), len(counts))].sum(axis=0))
        ).micro_f1
        for _ in range(BOOTSTRAP_RESAMPLES)
    ]
    return float(np.std(draws))


def out_of_fold(rows: CandidateRows, posts: int, c: float) -> np.ndarray:
    """Each candidate's probability from a head fitted on the folds its post is not in."""
    from sklearn.linear_model import LogisticRegression

    fold = np.random.default_rng(FOLD_SEED).permutation(posts) % FOLDS
    proba = np.zeros(len(rows.labels))
    for k in range(FOLDS):
        held = fold[rows.post] == k
        clf = LogisticRegression(C=c, max_iter=10000, class_weight="balanced")
        clf.fit(rows.features[~held], rows.labels[~held])
        proba[held] = clf.predict_proba(rows.features[held])[:, 1]
    return proba


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
        data.likened,
        strict=True,
    )
    return [
        model.attribute(emb, proba, named, text, tagged, away, likened)
        for text, emb, proba, named, tagged, away, likened in posts
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
    """Fit on ``backend``'s embeddings (the one the pipeline runs) of the layer the category head reads, and
    on that head's probabilities."""
    from sklearn.linear_model import LogisticRegression

    model = SentimentModel.load(model_dir, backend=backend, threads=threads)
    category = CategoryModel.load(model_dir)
    with console.status("embedding the labelled posts"):
        tr = attribution_examples(model, category, train)
        va = attribution_examples(model, category, valid)
    both = tr + va
    rows = candidate_rows(both)
    rules = score_attribution(attribute_all(None, both), both.gold)
    console.print(f"gazetteer alone: micro-F1 {rules.micro_f1:.3f} over train+valid")
    scored: list[tuple[float, float, float, float, list[list[Agency]]]] = []  # F1, C, thresholds, decisions
    for c in C_VALUES:
        proba = out_of_fold(rows, len(both.gold), c)
        f1, named_at, implied_at = best_thresholds(both, rows, proba)
        scored.append((f1, c, named_at, implied_at, decide(both, rows, proba, named_at, implied_at)))
        console.print(f"C {c:<5} cross-validated micro-F1 {f1:.3f} (thresholds {named_at} / {implied_at})")
    top = max(scored, key=lambda row: row[0])
    error = standard_error(top[4], both.gold)
    # the strongest regularisation within one standard error of the best (the one-standard-error rule): a
    # weaker one fits the embedding to the wording of our own examples, which real posts do not share
    f1, c, named_at, implied_at, _ = next(row for row in scored if row[0] >= top[0] - error)
    console.print(f"best C {top[1]} ({top[0]:.3f} ± {error:.3f}); within one standard error: C {c}")
    clf = LogisticRegression(C=c, max_iter=10000, class_weight="balanced").fit(rows.features, rows.labels)
    head = AttributionModel(
        clf.coef_[0].astype(np.float32), float(clf.intercept_[0]), named_at, implied_at, layer=category.layer
    )
    head.save(model_dir / ATTRIBUTION_HEAD_FILE, metadata={"C": str(c)})
    summary = {
        "head": "logistic regression per candidate agency on [embedding, candidate evidence]",
        "embeddings_backend": backend,
        "embedding_layer": category.layer,
        "C": c,
        "threshold": head.threshold,
        "implied_threshold": head.implied_threshold,
        "selected_by": f"{FOLDS}-fold cross-validation over train+valid (folds by post, seed {FOLD_SEED})",
        "cv_micro_f1": round(f1, 4),
        "cv_best": {"C": top[1], "micro_f1": round(top[0], 4), "standard_error": round(error, 4)},
        "cv_by_C": {str(row[1]): round(row[0], 4) for row in scored},
        "gazetteer_micro_f1": round(rules.micro_f1, 4),
        "train": file_info(train) | {"posts": len(tr.gold)},
        "valid": file_info(valid) | {"posts": len(va.gold)},
        "candidates": len(rows.labels),
    }
    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    meta["attribution"] = summary
    write_meta(model_dir, meta)
    console.print(
        f"attribution head: C {c}, thresholds {head.threshold} named / {head.implied_threshold} implied, "
        f"cross-validated micro-F1 {f1:.3f} (gazetteer {rules.micro_f1:.3f})"
    )
    return summary
