"""The `pantau` commands users run, as subprocesses against the session's embedded stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipeline.kafka.groups import consumer_group_members
from pipeline.tracking import wait_processed
from tests.integration.conftest import Pipeline, make_post, pantau, processes_of


def test_status_json_reports_the_running_stack(pipeline: Pipeline) -> None:
    result = pantau("status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
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
        assert status["topics"][topic]["replication"] == 1
    group = status["group"]
    assert group["group"] == pipeline.settings.app_id and len(group["members"]) == 1
    lagged = {(p["topic"], p["partition"]) for p in group["partitions"]}
    assert {(pipeline.settings.topic_raw, n) for n in range(pipeline.settings.topic_partitions)} <= lagged
    assert all(p["lag"] >= 0 for p in group["partitions"])
    assert status["drift"] == [] and status["problems"] == []


def test_status_reads_the_group_from_kafka_for_external_workers_too(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    external = {  # another host: none of the embedded stack's state
        "PANTAU_KAFKA_BOOTSTRAP": pipeline.endpoints.kafka,
        "PANTAU_ES_URL": pipeline.endpoints.elasticsearch,
        "PANTAU_RUN_DIR": str(tmp_path),
    }
    result = pantau("status", "--json", env=external)
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(result.stdout)
    assert status["worker"] == "running" and status["workers"] == 1
    assert "worker_pid" not in status  # no supervisor of ours runs them

    nobody = pantau("status", "--json", env={**external, "PANTAU_APP_ID": f"nobody-{uuid.uuid4().hex[:8]}"})
    assert nobody.returncode == 1
    status = json.loads(nobody.stdout)
    assert status["worker"] == "stopped" and status["workers"] == 0
    assert any("no worker is in the consumer group nobody-" in p for p in status["problems"])
    text = pantau("status", env={**external, "PANTAU_APP_ID": "nobody"})
    assert (
        text.returncode == 1 and "problem          no worker is in the consumer group nobody" in text.stdout
    )


def test_status_fails_when_the_lag_keeps_growing(pipeline: Pipeline) -> None:
    group = f"lagging-{uuid.uuid4().hex[:8]}"  # a group nobody consumes for: every post adds to its lag
    env = {"PANTAU_APP_ID": group, "PANTAU_STATUS_LAG_INTERVAL": "1", "PANTAU_STATUS_WATCH_INTERVAL": "0.2"}
    first = json.loads(pantau("status", "--json", env=env).stdout)["group"]
    assert first["lag_trend"] == "unknown"
    time.sleep(1.2)
    pipeline.send_post(make_post("PDAM Tirta Kerta Raharja mati lagi dari subuh"))
    result = pantau("status", "--json", "--watch", "--count", "2", env=env)
    assert result.returncode == 1
    refreshes = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(refreshes) == 2
    assert refreshes[0]["group"]["lag"] > first["lag"]
    assert refreshes[1]["group"]["lag_trend"] == "growing"  # the third reading that rose
    assert any("consumer lag grew" in p for p in refreshes[1]["problems"])


def test_status_and_the_worker_say_where_topics_and_indices_differ_from_the_settings(
    pipeline: Pipeline,
) -> None:
    index = f"{pipeline.settings.index_prefix}-1999.01"
    pipeline.es.indices.create(index=index, settings={"number_of_replicas": 0})
    try:
        env = {"PANTAU_TOPIC_PARTITIONS": "6", "PANTAU_INDEX_REPLICAS": "1"}
        result = pantau("status", "--json", env=env)
        assert result.returncode == 0, result.stdout + result.stderr  # a warning, not a failure
        drift = {(d["name"], d["setting"]): d for d in json.loads(result.stdout)["drift"]}
        raw = drift[(pipeline.settings.topic_raw, "partitions")]
        assert (raw["current"], raw["wanted"]) == (4, 6)
        assert f"--alter --topic {pipeline.settings.topic_raw} --partitions 6" in raw["fix"]
        assert (pipeline.settings.topic_topics_input, "partitions") not in drift  # one partition on purpose
        replicas = drift[(index, "replicas")]
        assert replicas["fix"] == f'PUT {index}/_settings {{"index": {{"number_of_replicas": 1}}}}'
        text = pantau("status", env=env).stdout
        assert (
            f"drift            topic {pipeline.settings.topic_raw}: partitions is 4, the settings say 6"
            in text
        )
    finally:
        pipeline.es.indices.delete(index=index)


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
    assert result.returncode == 3  # sent the valid lines, reported the others
    assert "posts.jsonl:2" in result.stderr and "not JSON" in result.stderr
    assert "posts.jsonl:3" in result.stderr and "id:" in result.stderr
    assert "posts.jsonl:4" in result.stderr and "limit 512,000" in result.stderr
    assert "sent 2 posts" in result.stderr
    assert "warning" not in result.stderr  # a worker consumes, and the broker can say so
    keys = [f"x:{p['id']}" for p in good]
    assert (
        wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=180).indexed
        == 2
    )


def test_deadletter_list_shows_why_and_replay_delivers_once_the_cause_is_fixed(pipeline: Pipeline) -> None:
    # The post's month gets an index whose mapping refuses it (agencies as numbers): Elasticsearch answers
    # 400 for that document, so the index agent dead-letters it.
    post = make_post("Samsat Ciruas antre panjang banget dari subuh", created_at="2019-01-15T08:00:00+00:00")
    index = f"{pipeline.settings.index_prefix}-2019.01"
    pipeline.es.indices.create(index=index, mappings={"properties": {"agencies": {"type": "integer"}}})
    key = pipeline.send_post(post)
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [key], timeout=180)
    assert tally.dead_lettered == 1, tally

    listed = pantau("deadletter", "list", "--key", key, "--json")
    assert listed.returncode == 0, listed.stderr
    (letter,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert letter["key"] == key and letter["stage"] == "index"
    assert (
        letter["reason"].startswith("HTTP 400") and letter["source_topic"] == pipeline.settings.topic_enriched
    )
    table = pantau("deadletter", "list", "--stage", "index", "--grep", "http 400")
    assert key in table.stdout

    assert pantau("deadletter", "replay").returncode == 2  # no filter: refuses to replay everything
    pipeline.es.indices.delete(index=index)  # the fix: the template makes the index again, correctly
    replayed = pantau("deadletter", "replay", "--key", key)
    assert replayed.returncode == 0, replayed.stderr
    assert f"sent 1 message back to {pipeline.settings.topic_enriched}" in replayed.stderr
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pipeline.es.indices.refresh(index=pipeline.settings.index_alias)
        if pipeline.es.count(index=pipeline.settings.index_alias, query={"ids": {"values": [key]}})["count"]:
            break
        time.sleep(0.5)
    doc = pipeline.document(key)
    assert doc["agencies"] == ["samsat"] and doc["text"] == post["text"]


def test_a_worker_that_cannot_load_its_model_exits_before_joining(pipeline: Pipeline, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "worker"],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "COLUMNS": "200",
            "PANTAU_KAFKA_BOOTSTRAP": pipeline.endpoints.kafka,
            "PANTAU_ES_URL": pipeline.endpoints.elasticsearch,
            "PANTAU_MODEL_DIR": str(tmp_path / "no-model"),
        },
    )
    assert result.returncode == 1
    assert "cannot load the model from" in result.stdout + result.stderr


def test_produce_confirms_sends_in_chunks_and_loses_none(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.kafka import producer

    monkeypatch.setattr(producer, "CONFIRM_EVERY", 3)
    posts = [make_post(f"Samsat Cikokol antre panjang, hari ke-{n}") for n in range(7)]
    path = tmp_path / "chunks.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in posts))
    report = producer.produce_file(pipeline.settings, pipeline.endpoints.kafka, path)
    assert (report.sent, report.keys) == (7, [])  # keys are kept only for a caller that asks
    keys = producer.produce_file(pipeline.settings, pipeline.endpoints.kafka, path, keep_keys=True).keys
    assert keys == [f"x:{p['id']}" for p in posts]
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=180)
    assert tally.indexed == 7


def test_a_stopped_worker_stays_stopped_and_status_and_produce_say_so(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    # a worker that has joined and consumes (tests/conftest.py runs this test after the scale-out test, so
    # the group is past the generation in which a stopping worker sends no LeaveGroup)
    first = make_post("Dukcapil Cilegon antre dari subuh, blangko habis")
    pipeline.send_post(first)
    joined = wait_processed(
        pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [f"x:{first['id']}"], timeout=180
    )
    assert joined.indexed == 1, joined
    pipeline.stack.stop_worker()  # as `pantau down` stops it: the supervisor first
    try:
        time.sleep(2)  # past the supervisor's first back-off: a restart racing the stop would show now
        assert pipeline.stack.worker() is None
        assert not [
            pid
            for pid in processes_of(pipeline.stack.run_dir)
            if b"pipeline." in Path(f"/proc/{pid}/cmdline").read_bytes()  # a worker or a supervisor
        ]

        result = pantau("status", "--json")
        assert result.returncode == 1, result.stderr
        status = json.loads(result.stdout)
        assert status["worker"] == "stopped"
        assert status["worker_why"].startswith("stopped on request at ")
        assert status["worker_log"] == str(pipeline.stack.worker_log)
        text = pantau("status").stdout
        assert "stopped on request" in text and str(pipeline.stack.worker_log) in text

        deadline = time.monotonic() + 60  # the stopped worker's consumer leaves the group
        while consumer_group_members(pipeline.settings, pipeline.endpoints.kafka):
            assert time.monotonic() < deadline, "the stopped worker is still in the consumer group"
            time.sleep(0.5)
        post = make_post("Samsat Kalodran antre lagi, sistem offline dari pagi")
        path = tmp_path / "posts.jsonl"
        path.write_text(json.dumps(post) + "\n")
        produced = pantau("produce", str(path))
        assert produced.returncode == 0, produced.stderr
        (warning,) = [line for line in produced.stderr.splitlines() if "warning" in line]
        assert f"no worker is consuming {pipeline.settings.topic_raw}" in warning
    finally:
        pipeline.start_worker()
    assert pantau("status", "--json").returncode == 0
    # the post waited in Kafka for the worker
    tally = wait_processed(
        pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [f"x:{post['id']}"], timeout=180
    )
    assert tally.indexed == 1, tally
