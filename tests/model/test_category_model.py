"""The shipped category head: one encoder pass with the sentiment head, scored on the held-out split."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from pipeline.enrich.enricher import Enricher
from pipeline.model.category import AGENCIES, CATEGORIES, CategoryModel
from pipeline.model.data import DEFAULT_MODEL_DIR, INDOMAIN_DIR, load_category_labelled
from pipeline.model.evaluate import evaluate_category
from pipeline.model.sentiment import Head
from pipeline.model.train_category import category_inputs
from pipeline.validation import validate_raw_post
from schemas.vocab import Category


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher.load(DEFAULT_MODEL_DIR)


def test_head_covers_every_category() -> None:
    head = CategoryModel.load(DEFAULT_MODEL_DIR)
    assert head.head.labels == CATEGORIES
    assert head.version.startswith("cat-")


def test_held_out_accuracy_meets_target(enricher: Enricher) -> None:
    rows, labels = load_category_labelled(INDOMAIN_DIR / "test.jsonl")
    embeddings, evidence = category_inputs(enricher.sentiment, rows, enricher.category.layer)
    report = evaluate_category(enricher.category, embeddings, evidence, labels)
    assert report.n == 150
    assert report.accuracy >= 0.85, report.per_class


@pytest.mark.parametrize(
    ("text", "category", "public"),
    [
        (
            "SLOT GACOR hari ini maxwin dijamin, depo 10rb langsung WD 🔥🔥 link di bio",
            "bukan_layanan",
            False,
        ),
        (
            "mau perpanjang stnk 5 tahunan di samsat cikokol harus bawa bpkb asli gak min?",
            "pajak_kendaraan",
            True,
        ),
        ("air pdam di perumahan kami keruh kayak teh susu udah 3 hari", "air_bersih", True),
        ("warga kampung kami kebanjiran setinggi dada, tolong bpbd lebak segera evakuasi", "bencana", True),
    ],
)
def test_clear_posts(enricher: Enricher, text: str, category: str, public: bool) -> None:
    post = validate_raw_post({"id": "c1", "platform": "x", "text": text, "created_at": datetime.now(UTC)})
    (result,) = enricher.enrich([post])
    assert not isinstance(result, Exception)
    assert result.category == Category(category)
    assert result.is_public_service is public
    assert 0 < result.category_confidence <= 1
    assert result.model_version.startswith(enricher.sentiment.version + "+cat-")


@pytest.mark.parametrize(
    ("none_probability", "category", "public"),
    [(0.30, Category.BANSOS, True), (0.49, Category.BANSOS, True), (0.60, Category.BUKAN_LAYANAN, False)],
)
def test_category_and_public_flag_agree(none_probability: float, category: Category, public: bool) -> None:
    """bukan_layanan as the most likely class at 0.30 must not come out as a public-service post labelled
    bukan_layanan: the category follows the flag's 0.5 threshold."""
    probs = np.full(len(CATEGORIES), (1 - none_probability) * 0.6 / (len(CATEGORIES) - 2))
    probs[CATEGORIES.index(Category.BANSOS.value)] = (1 - none_probability) * 0.4
    probs[CATEGORIES.index(Category.BUKAN_LAYANAN.value)] = none_probability
    embeddings = np.ones((1, 4), dtype=np.float32)
    evidence = np.zeros((1, len(CATEGORIES) + len(AGENCIES)), dtype=np.float32)
    width = embeddings.shape[1] + evidence.shape[1]
    model = CategoryModel(Head(np.zeros((len(CATEGORIES), width)), np.log(probs), CATEGORIES), 1.0)
    assert np.argmax(model.probabilities(embeddings, evidence)) == CATEGORIES.index("bukan_layanan")
    (prediction,) = model.predict(embeddings, evidence)
    assert (prediction.category, prediction.is_public_service) == (category, public)
    expected = probs[CATEGORIES.index(category.value)]
    assert prediction.confidence == pytest.approx(expected, rel=1e-5)
