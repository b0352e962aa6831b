"""`pantau model eval --suite`: every set in one report, the attribution scored against the labels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.model.suite import SuiteSet, error_text, markdown_suite, run_suite, score_enrichment
from pipeline.settings import DEFAULT_MODEL_DIR
from schemas.vocab import Agency


def test_enrichment_scores_count_each_agency_and_category_error() -> None:
    report = score_enrichment(
        predicted_agencies=[["samsat"], ["pdam", "dpupr"], []],
        gold_agencies=[["samsat"], ["pdam"], ["dlh"]],
        predicted_categories=["pajak_kendaraan", "jalan_infrastruktur", "bukan_layanan"],
        gold_categories=["pajak_kendaraan", "air_bersih", "lingkungan_sampah"],
        predicted_regions=["3671", None, "3602"],
        gold_regions=["3671", "3673", "3602"],
    )
    assert (report.agencies.tp, report.agencies.fp, report.agencies.fn) == (2, 1, 1)
    assert report.agencies.micro_f1 == pytest.approx(4 / 6)
    assert report.per_agency[Agency.DPUPR].fp == 1 and report.per_agency[Agency.DLH].fn == 1
    assert report.category_accuracy == pytest.approx(1 / 3)
    assert report.category_errors == {
        "air_bersih": Counter({"jalan_infrastruktur": 1}),
        "lingkungan_sampah": Counter({"bukan_layanan": 1}),
    }
    assert report.region_accuracy == pytest.approx(2 / 3)
    assert report.region_errors == {"3673": Counter({"none": 1})}
    assert "3673 → none ×1" in error_text(report.region_errors) and error_text({}) == "none"


def test_the_suite_scores_each_present_set_and_lists_the_missing_one(tmp_path: Path) -> None:
    from pipeline.enrich.enricher import Enricher

    tsv = tmp_path / "small.tsv"
    tsv.write_text(
        "pelayanannya cepat dan ramah sekali\tpositive\njalannya rusak parah dan banyak lubang\tnegative\n"
        "kantor buka jam delapan pagi\tneutral\nmakasih petugasnya sabar banget\tpositive\n",
        encoding="utf-8",
    )
    posts = [
        {
            "id": "a",
            "text": "Samsat Cikokol antre 3 jam, loket cuma 2 😡",
            "sentiment": "negative",
            "category": "pajak_kendaraan",
            "platform": "x",
            "agencies": ["samsat"],
            "region": "3671",
        },
        {
            "id": "b",
            "text": "air PDAM di Cilegon mati 2 hari",
            "sentiment": "negative",
            "category": "air_bersih",
            "platform": "x",
            "agencies": ["pdam"],
            "region": "3672",
        },
        {
            "id": "c",
            "text": "sunset di pantai Anyer cakep bgt",
            "sentiment": "positive",
            "category": "bukan_layanan",
            "platform": "instagram",
            "agencies": [],
            "region": "3604",
        },
    ]
    jsonl = tmp_path / "indomain.jsonl"
    jsonl.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
    missing = SuiteSet("not yet", tmp_path / "absent.csv")
    enricher = Enricher.load(DEFAULT_MODEL_DIR, backend="onnx-int8", threads=1)

    report = run_suite(
        enricher,
        "onnx-int8",
        sentiment_sets=[SuiteSet("small", tsv), SuiteSet("in-domain", jsonl), missing],
        attribution_sets=[SuiteSet("in-domain", jsonl)],
    )

    assert [(s.name, r.n) for s, r in report.sentiment] == [("small", 4), ("in-domain", 3)]
    assert report.missing == [missing]
    ((_, attribution),) = report.attribution
    assert attribution.n == 3
    scored = attribution.agencies
    assert scored.tp + scored.fn == 2  # two labelled agencies, each either found or missed
    assert 0.0 <= attribution.category_accuracy <= 1.0
    # Cikokol is in Kota Tangerang, Cilegon a city, Anyer in Kab. Serang: the gazetteer places all three
    assert attribution.region_accuracy == 1.0 and attribution.region_errors == {}
    assert "in-domain, region errors (true → taken for): none" in markdown_suite(report)
    text = markdown_suite(report)
    assert "| small | " in text and "not scored: not yet" in text
    assert text.count("| in-domain |") == 2  # one sentiment row, one attribution row


def test_eval_needs_data_or_the_suite_and_not_both(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["model", "eval"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "--suite" in result.output
    data = tmp_path / "a.tsv"
    data.write_text("bagus\tpositive\n", encoding="utf-8")
    result = runner.invoke(app, ["model", "eval", "--suite", "--data", str(data)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "--suite scores its own sets" in result.output
    result = runner.invoke(app, ["model", "eval", "--markdown", "--data", str(data)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "only applies with --suite" in result.output
