"""The correction loop through the real stack: posts indexed by the worker, exported with their predicted
labels, corrected in the CSV as an analyst would, imported into the labelled file training reads."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.model.data import load_labelled
from pipeline.tracking import wait_processed
from tests.integration.conftest import Pipeline, make_post, pantau


def test_export_edit_import_keeps_corrections_with_provenance(pipeline: Pipeline, tmp_path: Path) -> None:
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    old = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    posts = [
        make_post("jalan di Cikupa rusak parah, @dpupr_banten kapan dibenerin?", created_at=recent),
        make_post("makasih DPUPR Kab Serang, jalan Baros udah mulus sekarang 🙏", created_at=recent),
        make_post("Samsat Cikokol antre panjang bgt hari ini, loket cuma buka 2", created_at=recent),
        make_post("jalan Pontang rusak lagi, lubang di mana-mana", created_at=old),  # outside --since 7d
    ]
    keys = [pipeline.send_post(post) for post in posts]
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=180)
    assert tally.indexed == len(keys), tally
    pipeline.es.indices.refresh(index=pipeline.settings.index_alias)

    exported = tmp_path / "labels.csv"
    result = pantau("label", "export", "--since", "7d", "--agency", "dpupr", "--out", str(exported))
    assert result.returncode == 0, result.stderr
    with exported.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = [row for row in reader if row["key"] in keys]
    assert {row["key"] for row in rows} == set(keys[:2])  # only dpupr, only the last 7 days
    assert {"sentiment", "category", "agencies", "correct_sentiment", "correct_agencies"} <= set(columns)
    by_key = {row["key"]: row for row in rows}
    road, thanks = by_key[keys[0]], by_key[keys[1]]
    assert road["model_version"] and "dpupr" in road["agencies"].split(";")

    # the analyst corrects both posts and breaks one cell of a third row
    road["correct_sentiment"] = "negative" if road["sentiment"] != "negative" else "neutral"
    thanks["correct_sentiment"] = "positive" if thanks["sentiment"] != "positive" else "neutral"
    thanks["correct_agencies"] = "dpupr"
    broken = {**road, "key": "x:broken", "correct_category": "roads"}
    edited = tmp_path / "edited.csv"
    with edited.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows([road, broken, thanks])

    kept = tmp_path / "corrections.jsonl"
    result = pantau("label", "import", str(edited), "--by", "analyst-1", "--to", str(kept))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "edited.csv:3: not imported" in result.stderr and "correct_category" in result.stderr
    records = {r["key"]: r for r in map(json.loads, kept.read_text(encoding="utf-8").splitlines())}
    assert set(records) == {keys[0], keys[1]}
    first = records[keys[0]]
    assert first["sentiment"] == road["correct_sentiment"]
    assert first["predicted"]["sentiment"] == road["sentiment"]
    assert first["model_version"] == road["model_version"] and first["by"] == "analyst-1"
    assert datetime.fromisoformat(first["at"]) > datetime.now(UTC) - timedelta(minutes=5)

    # a second pass on the same post replaces the first correction
    again = tmp_path / "again.csv"
    road["correct_sentiment"] = "positive"
    with again.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerow(road)
    result = pantau("label", "import", str(again), "--to", str(kept), env={"USER": "analyst-2"})
    assert result.returncode == 0, result.stderr
    lines = kept.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    latest = json.loads(lines[-1])
    assert (latest["key"], latest["sentiment"], latest["by"]) == (keys[0], "positive", "analyst-2")
    assert sorted(load_labelled(kept)[1]) == sorted([thanks["correct_sentiment"], "positive"])
