"""A hostile corpus sent between valid posts: every valid post is indexed, every hostile message is
dead-lettered with its reason, and the worker keeps running."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaProducer

from pipeline.kafka.config import kafka_python_config
from pipeline.tracking import dead_letter_key, wait_processed
from tests.integration.conftest import Pipeline, make_post

HUGE = [2_100_000, 12_000_000]
"""A 2 MB message, as in the report that stopped the worker, and a larger one; the embedded broker takes
messages of any size (100 MB were accepted when probed), so its largest is bounded by memory only."""


def _post(run: str, name: str, **fields: Any) -> tuple[str, bytes]:
    post = make_post("jalan rusak di ciruas", id=f"h{run}{name}")
    post.update(fields)
    return f"x:h{run}{name}", json.dumps(post, ensure_ascii=False).encode()


def test_hostile_messages_between_valid_posts(pipeline: Pipeline) -> None:
    run = uuid.uuid4().hex[:8]
    restarts = _restarts(pipeline)
    ok = make_post("jalan rusak di ciruas")
    hostile: dict[str, tuple[bytes, str, str]] = {}  # key → (value, stage, what the reason says)

    def add(name: str, value: bytes, stage: str, says: str) -> None:
        hostile[f"x:h{run}{name}"] = (value, stage, says)

    add("huge2mb", json.dumps({**ok, "id": "a", "attachment": "x" * HUGE[0]}).encode(), "decode", "limit")
    add("huge12mb", b'{"id": "b", "text": "' + b"y" * HUGE[1] + b'"}', "decode", "limit")
    add("binary", os.urandom(4096), "decode", "UTF-8")
    add("truncated", json.dumps(ok).encode()[:40], "decode", "not JSON")
    add("deep", json.dumps({**ok, "extra": json.loads("[" * 40 + "]" * 40)}).encode(), "validate", "nested")
    add("toodeep", b"[" * 200_000 + b"]" * 200_000, "decode", "nested too deeply")
    add(
        "types",
        json.dumps({**ok, "text": 123, "platform": 5, "created_at": "kemarin"}).encode(),
        "validate",
        "text",
    )
    add("empty", json.dumps({**ok, "text": ""}).encode(), "validate", "text")
    add("zerowidth", json.dumps({**ok, "text": "\u200b\u200c\u2060\ufeff"}).encode(), "validate", "empty")
    add(
        "surrogate",
        b'{"id": "s", "platform": "x", "text": "ok \\ud800", "created_at": "2026-11-20T08:30:00Z"}',
        "validate",
        "unicode",
    )
    add(
        "dupkey",
        b'{"id": "d1", "id": "d2", "platform": "x", "text": "a", "created_at": "2026-11-20T08:30:00Z"}',
        "decode",
        "twice",
    )
    add("nan", json.dumps({**ok, "geo": {"lat": float("nan")}}).encode(), "decode", "NaN")
    add("future", json.dumps({**ok, "created_at": "9999-12-31T00:00:00Z"}).encode(), "validate", "future")
    add(
        "ancient",
        json.dumps({**ok, "created_at": "0001-01-01T00:00:00Z"}).encode(),
        "validate",
        "before 2000",
    )
    add("overflow", json.dumps({**ok, "metrics": {"likes": 10**30}}).encode(), "validate", "metrics")
    add("array", b"[1, 2, 3]", "decode", "JSON object")
    add("string", b'"just a string"', "decode", "JSON object")
    add("tombstone", b"", "decode", "not JSON")

    valid: list[str] = []
    cleaned_key, cleaned = _post(run, "controls", text="jalan\x00 rusak\x07 di\x1b ciruas\x7f")
    producer = KafkaProducer(
        **kafka_python_config(pipeline.settings, pipeline.endpoints.kafka),
        acks="all",
        max_request_size=64_000_000,
    )
    try:
        futures = []
        for i, (key, (value, _, _)) in enumerate(hostile.items()):
            good_key, good = _post(run, f"ok{i}", text=f"air pdam mati lagi di cilegon hari ke {i}")
            valid.append(good_key)
            futures.append(producer.send(pipeline.settings.topic_raw, key=good_key.encode(), value=good))
            futures.append(producer.send(pipeline.settings.topic_raw, key=key.encode(), value=value))
        futures.append(producer.send(pipeline.settings.topic_raw, key=cleaned_key.encode(), value=cleaned))
        # a valid post under a hostile 100 KB message key: keyed by its own platform:id downstream
        odd_key, odd = _post(run, "oddkey")
        futures.append(producer.send(pipeline.settings.topic_raw, key=b"k" * 100_000, value=odd))
        for future in futures:
            future.get(timeout=60)
    finally:
        producer.close()
    valid += [cleaned_key, odd_key]

    tally = wait_processed(
        pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [*valid, *hostile], timeout=300
    )
    letters = {dead_letter_key(dl): dl for dl in tally.dead_letters}
    assert set(letters) == set(hostile), set(hostile) ^ set(letters)
    assert tally.indexed == len(valid), tally
    for key, (value, stage, says) in hostile.items():
        letter = letters[key]
        assert (letter.stage, says.lower() in letter.reason.lower()) == (stage, True), (key, letter.reason)
        original = base64.b64decode(letter.original)
        if letter.original_truncated:  # only what cannot fit the topic is cut, and it says so
            assert len(value) > 500_000 and value.startswith(original)
            assert letter.original_size == len(value)
            assert letter.original_sha256 == hashlib.sha256(value).hexdigest()
        else:
            assert original == value
    assert letters[f"x:h{run}huge12mb"].original_truncated
    assert pipeline.document(cleaned_key)["text"] == "jalan rusak di ciruas"  # control characters cleaned
    assert pipeline.document(odd_key)["text"] == "jalan rusak di ciruas"
    assert pipeline.stack.worker() is not None and _restarts(pipeline) == restarts  # never stopped


def _restarts(pipeline: Pipeline) -> int:
    supervision = pipeline.stack.read_supervision()
    return supervision.restarts if supervision else 0


def test_a_replay_refuses_a_letter_cut_to_fit(pipeline: Pipeline) -> None:
    from pipeline.kafka.producer import replay_dead_letters
    from pipeline.tracking import DeadLetterReader

    run = uuid.uuid4().hex[:8]
    key = f"x:cut{run}"
    value = json.dumps({**make_post("banjir"), "id": f"cut{run}", "blob": "z" * 3_000_000}).encode()
    producer = KafkaProducer(
        **kafka_python_config(pipeline.settings, pipeline.endpoints.kafka),
        acks="all",
        max_request_size=8_000_000,
    )
    producer.send(pipeline.settings.topic_raw, key=key.encode(), value=value).get(timeout=60)
    producer.close()
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [key], timeout=180)
    (letter,) = tally.dead_letters
    assert letter.original_truncated
    report = replay_dead_letters(pipeline.settings, pipeline.endpoints.kafka, [letter])
    assert report.sent == {} and report.truncated == [letter]
    since = datetime.now(UTC) - timedelta(minutes=5)
    reader = DeadLetterReader(pipeline.settings, pipeline.endpoints.kafka)
    try:
        again = [dl for dl in reader.read_all() if dead_letter_key(dl) == key and dl.failed_at > since]
    finally:
        reader.close()
    assert len(again) == 1  # nothing was sent back, so no second letter
