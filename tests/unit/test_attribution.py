"""The attribution head's candidates and decisions, with hand-set weights (no encoder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.model.attribution import (
    AGENCIES,
    EVIDENCE,
    AttributionModel,
    Candidate,
    candidate_features,
    candidates,
)
from pipeline.model.category import CATEGORIES
from pipeline.model.train_attribution import per_agency, score_attribution
from schemas.vocab import Agency, Category

DIM = 4


def _proba(category: Category, p: float = 0.9) -> np.ndarray:
    out = np.full(len(CATEGORIES), (1 - p) / (len(CATEGORIES) - 1))
    out[CATEGORIES.index(category.value)] = p
    return out


def test_candidates_are_the_named_agencies_then_those_the_category_implies() -> None:
    found = candidates([Agency.SAMSAT], _proba(Category.AIR_BERSIH))
    assert [(c.agency, c.named) for c in found] == [(Agency.SAMSAT, True), (Agency.PDAM, False)]
    assert [c.agency for c in candidates([], _proba(Category.KESEHATAN))] == [
        Agency.DINKES,
        Agency.PUSKESMAS,
        Agency.RSUD,
    ]
    assert candidates([], _proba(Category.BUKAN_LAYANAN)) == []  # chatter implies no agency
    # a named agency is not offered twice
    assert [c.agency for c in candidates([Agency.PDAM], _proba(Category.AIR_BERSIH))] == [Agency.PDAM]
    # outside Banten: an office named as another province's is never implied, nor anything for a post
    # about a place outside Banten
    assert candidates([], _proba(Category.AIR_BERSIH), elsewhere=[Agency.PDAM]) == []
    assert candidates([Agency.SAMSAT], _proba(Category.AIR_BERSIH), elsewhere=None) == [
        Candidate(Agency.SAMSAT, True)
    ]


def test_the_head_keeps_a_candidate_by_its_probability_and_threshold(tmp_path: Path) -> None:
    embedding = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    width = candidate_features(
        embedding, _proba(Category.AIR_BERSIH), candidates([], _proba(Category.AIR_BERSIH)), ""
    )
    weight = np.zeros(width.shape[1], dtype=np.float32)
    weight[DIM] = 3.0  # named
    weight[DIM + 1] = -3.0  # implied by the category only
    model = AttributionModel(weight, 0.0, 0.5)
    proba = _proba(Category.AIR_BERSIH)
    assert model.attribute(embedding, proba, [Agency.SAMSAT], "") == [Agency.SAMSAT]
    # the category implies PDAM at probability 0.05: kept only under a threshold for implied agencies that low
    assert AttributionModel(weight, 0.0, 0.5, 0.04).attribute(embedding, proba, [], "") == [Agency.PDAM]
    assert model.attribute(embedding, proba, [], "") == []
    weight[0] = -10.0  # what the embedding says (a joke, an ad) outweighs the name
    assert model.attribute(embedding, proba, [Agency.SAMSAT], "") == []
    # ... but not the agency the post tags by its @account: it was asked
    assert model.attribute(embedding, proba, [Agency.SAMSAT], "", [Agency.SAMSAT]) == [Agency.SAMSAT]
    path = tmp_path / "attribution_head.safetensors"
    AttributionModel(weight, 0.5, 0.3, 0.7).save(path)
    loaded = AttributionModel.load(tmp_path)
    assert loaded is not None and loaded.bias == 0.5
    assert (round(loaded.threshold, 3), round(loaded.implied_threshold, 3)) == (0.3, 0.7)
    assert np.array_equal(loaded.weight, weight)
    assert AttributionModel.load(tmp_path / "missing") is None


def test_features_mark_the_agency_and_how_it_was_found() -> None:
    embedding = np.zeros(DIM, dtype=np.float32)
    found = candidates([Agency.DLH], _proba(Category.LINGKUNGAN_SAMPAH))
    rows = candidate_features(embedding, _proba(Category.LINGKUNGAN_SAMPAH), found, "jasa urus, dijamin")
    assert rows.shape == (1, DIM + EVIDENCE + 2 * len(AGENCIES))
    assert rows[0, DIM] == 1.0 and rows[0, DIM + 1] == 0.0
    assert rows[0, DIM + 2] == 0.9  # the category DLH serves is the likely one
    assert round(float(rows[0, DIM + 6]), 3) == 0.667  # two words of an offer
    assert rows[0, DIM + EVIDENCE + AGENCIES.index(Agency.DLH)] == 1.0
    assert rows[0, DIM + 7] == 0.0  # named plainly
    assert rows[0, DIM + 8] == 1.0 and rows[0, DIM + 9] == 0.0  # opens as an offer; no phone number
    found = candidates([Agency.SAMSAT], _proba(Category.PAJAK_KENDARAAN))
    for text, opening, contact in [
        ("Terima kasih Samsat, cepet banget", 0.0, 0.0),
        ("TERIMA jasa urus balik nama, wa 0812345678", 1.0, 1.0),
        ("samsat keliling hari ini di mana? hubungi [TELEPON] katanya", 0.0, 1.0),
    ]:
        row = candidate_features(embedding, _proba(Category.PAJAK_KENDARAAN), found, text)[0]
        assert (row[DIM + 8], row[DIM + 9]) == (opening, contact), text
    likened = candidates([Agency.DLH], _proba(Category.LINGKUNGAN_SAMPAH), likened=[Agency.DLH])
    assert likened == [Candidate(Agency.DLH, True, likened=True)]
    assert candidate_features(embedding, _proba(Category.LINGKUNGAN_SAMPAH), likened, "")[0, DIM + 7] == 1.0


def test_scores_count_each_agency_once_per_post() -> None:
    predicted = [[Agency.PDAM, Agency.DPUPR], [Agency.SAMSAT], []]
    gold = [{Agency.PDAM}, {Agency.SAMSAT}, {Agency.DLH}]
    score = score_attribution(predicted, gold)
    assert (score.tp, score.fp, score.fn) == (2, 1, 1)
    assert round(score.micro_f1, 3) == 0.667
    rows = per_agency(predicted, gold)
    assert (rows[Agency.DPUPR].fp, rows[Agency.DLH].fn, rows[Agency.PDAM].tp) == (1, 1, 1)
