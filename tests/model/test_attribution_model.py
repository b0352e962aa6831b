"""The shipped attribution head on the kinds of post it exists for: an agent's ad or a joke names an agency
without being about it (kept in ``mentions``, left out of ``agencies``), a citizen's post about the service
counts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.enrich.enricher import Enricher
from pipeline.model.data import DEFAULT_MODEL_DIR
from pipeline.validation import validate_raw_post
from schemas.vocab import Agency


@pytest.fixture(scope="module")
def enricher() -> Enricher:
    return Enricher.load(DEFAULT_MODEL_DIR)


@pytest.mark.parametrize(
    ("text", "named", "about"),
    [
        ("jasa urus STNK mati 5 tahun, proses cepat, wa 0812xxxx", Agency.SAMSAT, False),
        ("jasa bikin KTP kilat tanpa antri dukcapil tangerang", Agency.DUKCAPIL, False),
        ("hubungan kita kayak air PDAM, kadang ngalir kadang mati", Agency.PDAM, False),
        ("air PDAM di Cilegon mati 2 hari, kapan ngalir lagi", Agency.PDAM, True),
        ("perpanjang stnk 5 tahunan di samsat cikokol harus bawa bpkb asli gak min?", Agency.SAMSAT, True),
        ("bikin KTP di dukcapil kota tangerang antrenya 3 jam, blangkonya habis lagi", Agency.DUKCAPIL, True),
    ],
)
def test_an_agents_ad_names_the_agency_and_a_citizens_post_is_about_it(
    enricher: Enricher, text: str, named: Agency, about: bool
) -> None:
    post = validate_raw_post({"id": "a1", "platform": "x", "text": text, "created_at": datetime.now(UTC)})
    (result,) = enricher.enrich([post])
    assert not isinstance(result, Exception)
    assert named in result.mentions
    assert (named in result.agencies) is about, result.agencies


@pytest.mark.parametrize("text", ["👍", "🙏🙏", "Amin", "first", "mantap", "?", "...", "😡", "hmm"])
def test_a_comment_with_nothing_to_judge_is_no_service_post_of_any_agency(
    enricher: Enricher, text: str
) -> None:
    """The heads read a service into any text: "?" came out a pemda complaint, "Amin" a PDAM one."""
    post = validate_raw_post(
        {"id": "c1", "platform": "youtube", "text": text, "created_at": datetime.now(UTC)}
    )
    (result,) = enricher.enrich([post])
    assert not isinstance(result, Exception)
    assert result.agencies == [] and not result.is_public_service, (result.agencies, result.category)


@pytest.mark.parametrize(
    ("text", "agency"),
    [("banjir!", Agency.BPBD), ("@samsatbanten ?", Agency.SAMSAT), ("sampah numpuk", Agency.DLH)],
)
def test_a_short_post_the_rules_recognise_is_still_judged(
    enricher: Enricher, text: str, agency: Agency
) -> None:
    post = validate_raw_post({"id": "c2", "platform": "x", "text": text, "created_at": datetime.now(UTC)})
    (result,) = enricher.enrich([post])
    assert not isinstance(result, Exception)
    assert result.is_public_service and agency in result.agencies, (result.agencies, result.category)


def test_training_picks_the_strongest_regularisation_within_one_standard_error(tmp_path: Path) -> None:
    """The whole recipe on part of the in-domain data: cross-validated choice, a head the pipeline loads."""
    import shutil

    from rich.console import Console

    from pipeline.model.attribution import AttributionModel
    from pipeline.model.data import INDOMAIN_DIR
    from pipeline.model.train_attribution import C_VALUES, train_attribution

    model_dir = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model_dir)
    (model_dir / "attribution_head.safetensors").unlink()
    lines = (INDOMAIN_DIR / "train.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "train.jsonl").write_text("\n".join(lines[:300]) + "\n", encoding="utf-8")
    (tmp_path / "valid.jsonl").write_text("\n".join(lines[300:360]) + "\n", encoding="utf-8")
    summary = train_attribution(
        model_dir, tmp_path / "train.jsonl", tmp_path / "valid.jsonl", Console(quiet=True), "onnx-int8"
    )
    best, by_c = summary["cv_best"], summary["cv_by_C"]
    assert set(by_c) == {str(c) for c in C_VALUES} and best["micro_f1"] == max(by_c.values())
    assert 0 < best["standard_error"] < 0.1
    # the strongest regularisation (smallest C) within one standard error of the best
    within = [c for c in C_VALUES if by_c[str(c)] >= best["micro_f1"] - best["standard_error"]]
    assert summary["C"] == min(within) and summary["cv_micro_f1"] == by_c[str(summary["C"])]
    assert summary["cv_micro_f1"] > summary["gazetteer_micro_f1"]
    head = AttributionModel.load(model_dir)
    assert head is not None and (head.threshold, head.implied_threshold) == (
        summary["threshold"],
        summary["implied_threshold"],
    )
