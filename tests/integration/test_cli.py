"""The `pantau` commands users run, as subprocesses against the session's embedded stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.tracking import wait_processed
from tests.integration.conftest import Pipeline, make_post


def pantau(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_status_json_reports_the_running_stack(pipeline: Pipeline) -> None:
    result = pantau("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["kafka"] == pipeline.endpoints.kafka
    assert status["elasticsearch"] == pipeline.endpoints.elasticsearch
    assert status["worker"] == "running"
    assert status["index"] == pipeline.settings.index_alias
    for topic in (
        pipeline.settings.topic_raw,
        pipeline.settings.topic_enriched,
        pipeline.settings.topic_dead_letter,
    ):
        assert status["topics"][topic]["partitions"] == pipeline.settings.topic_partitions


def test_produce_sends_valid_lines_and_reports_invalid_ones(pipeline: Pipeline, tmp_path: Path) -> None:
    good = [
        make_post("Dukcapil Kota Serang blanko KTP habis lagi, disuruh balik minggu depan"),
        make_post("makasih damkar tangsel gercep banget evakuasi ular di Pamulang 🙏"),
    ]
    path = tmp_path / "posts.jsonl"
    huge = {**good[1], "id": "huge", "attachment": "x" * 600_000}
    lines = [json.dumps(good[0]), "{not json", json.dumps({**good[1], "id": "bad id"}), json.dumps(huge)]
    path.write_text("\n".join([*lines, json.dumps(good[1])]) + "\n")
    result = pantau("produce", str(path))
    assert result.returncode == 2
    assert "posts.jsonl:2" in result.stderr and "not JSON" in result.stderr
    assert "posts.jsonl:3" in result.stderr and "id:" in result.stderr
    assert "posts.jsonl:4" in result.stderr and "limit 512,000" in result.stderr
    assert "sent 2 posts" in result.stderr
    keys = [f"x:{p['id']}" for p in good]
    assert (
        wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=180).indexed
        == 2
    )
