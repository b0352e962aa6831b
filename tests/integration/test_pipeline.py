"""Posts through the real broker, the real worker process and the real Elasticsearch."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from pipeline.model.data import DEFAULT_MODEL_DIR
from pipeline.tracking import DeadLetterReader, dead_letter_key, wait_processed
from schemas.posts import DeadLetter
from tests.integration.conftest import Pipeline, make_post


def test_post_is_enriched_and_indexed(pipeline: Pipeline) -> None:
    post = make_post(
        "@samsatbanten min pajak motor sy udh bayar lewat e-samsat tp stnk blm dikirim2 udh sebulan 😡 "
        "hubungi sy di 0812-3456-7890, plat A 1234 BCD, samsat ciruas",
        author={"id": "u1", "handle": "warga_serang", "name": "Budi", "followers": 12},
        metrics={"likes": 3, "replies": 1},
        collected_by="test-suite",
        # fields beside the text that platforms fill with free text: masked the same way
        quoted={"text": "NIK sy 3604123456789012 a.n. Siti Aminah", "likes": 2},
        url="https://wa.me/6281298765432",
    )
    key = pipeline.send_post(post)
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [key], timeout=180)
    assert tally.indexed == 1, tally
    doc = pipeline.document(key)
    assert doc["post_id"] == post["id"]
    assert doc["@timestamp"].startswith("2026-11-20T08:30")
    assert "samsat" in doc["agencies"]
    assert doc["region"] == "3604"  # Ciruas is in Kab. Serang
    assert doc["category"] == "pajak_kendaraan"
    assert doc["sentiment"]["label"] == "negative"
    total = doc["sentiment"]["negative"] + doc["sentiment"]["neutral"] + doc["sentiment"]["positive"]
    assert abs(total - 1) < 1e-3
    assert "0812" not in doc["text"] and "1234 BCD" not in doc["text"]
    assert set(doc["pii"]) == {"phone", "plate", "nik", "name"}
    assert doc["likes"] == 3
    assert doc["extra"] == {
        "collected_by": "test-suite",
        "quoted": {"text": "NIK sy [NIK] a.n. [NAMA]", "likes": 2},
    }
    assert doc["url"] == "https://wa.me/[TELEPON]"
    assert doc["author"]["handle"] == "warga_serang"  # the public identity an agency answers
    shipped = json.loads((DEFAULT_MODEL_DIR / "pantau_model.json").read_text(encoding="utf-8"))["version"]
    assert doc["model_version"].startswith(shipped + "+")  # sentiment weights + category head


def test_malformed_messages_are_dead_lettered_and_worker_goes_on(pipeline: Pipeline) -> None:
    bad_json = b'{"id": "broken", "platform": "x", "text": "kok'
    bad_contract = json.dumps(
        {"id": "has space", "platform": "myspace", "text": "hai", "created_at": "2026-11-20T08:00:00"}
    ).encode()
    too_long = make_post("banjir " * 2000)  # 14,000 characters
    # Sundanese script: valid UTF-8 and a valid post, but no piece of the trimmed vocabulary covers it
    unreadable = make_post("ᮘᮔ᮪ᮏᮤᮁ ᮌᮨᮓᮦ ᮓᮤ ᮜᮨᮘᮊ᮪")
    # Nested past the JSON parser's recursion limit; and a message whose dead letter (base64) would not fit
    # Kafka's 1 MB default if the message were not refused at 512,000 bytes.
    too_deep = b"[" * 100_000 + b"]" * 100_000
    too_big = make_post("Samsat Cikokol antre", attachment="x" * 600_000)
    # keys of this test alone: outcomes are counted per key, and the session's stack is shared
    run = uuid.uuid4().hex[:8]
    broken, spaced, deep = f"x:broken-{run}", f"myspace:has space-{run}", f"x:deep-{run}"
    pipeline.send_raw(bad_json, broken.encode())
    pipeline.send_raw(bad_contract, spaced.encode())
    pipeline.send_raw(too_deep, deep.encode())
    long_key = pipeline.send_post(too_long)
    unreadable_key = pipeline.send_post(unreadable)
    big_key = pipeline.send_post(too_big)
    good = make_post("Terima kasih BPBD Lebak sudah cepat evakuasi warga Rangkasbitung yang kebanjiran 🙏")
    good_key = pipeline.send_post(good)

    tally = wait_processed(
        pipeline.settings,
        pipeline.endpoints.kafka,
        pipeline.es,
        [broken, spaced, deep, long_key, unreadable_key, big_key, good_key],
        timeout=180,
    )
    assert tally.indexed == 1 and tally.dead_lettered == 6, tally
    letters = {dead_letter_key(dl): dl for dl in tally.dead_letters}
    assert letters[broken].stage == "decode" and "not JSON" in letters[broken].reason
    assert letters[deep].reason == "not JSON the parser accepts: nested too deeply"
    assert letters[big_key].stage == "decode" and "limit 512,000" in letters[big_key].reason
    assert json.loads(base64.b64decode(letters[big_key].original))["attachment"] == too_big["attachment"]
    assert base64.b64decode(letters[broken].original) == bad_json
    contract = letters[spaced]
    assert contract.stage == "validate"
    assert "id" in contract.reason and "platform" in contract.reason and "created_at" in contract.reason
    assert "10000" in letters[long_key].reason.replace(",", "")
    assert letters[unreadable_key].stage == "enrich"
    assert letters[unreadable_key].reason == "only characters the tokenizer does not know"
    assert json.loads(base64.b64decode(letters[unreadable_key].original))["text"] == unreadable["text"]
    assert pipeline.document(good_key)["agencies"] == ["bpbd"]


def test_same_post_twice_is_one_document(pipeline: Pipeline) -> None:
    post = make_post("PDAM Tirta Benteng air mati lagi dari subuh, Cipondoh kering kerontang")
    key = pipeline.send_post(post)
    first = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [key], timeout=180)
    assert first.indexed == 1, first
    resent_at = datetime.now(UTC)
    pipeline.send_post(post)  # a redelivery, as at-least-once producers and replays make
    # Processed again only once a document for the key carries a later processed_at: then it replaced
    # the first copy, and the count below would show a second document if it had not.
    again = wait_processed(
        pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [key], timeout=180, since=resent_at
    )
    assert again.indexed == 1, again
    pipeline.es.indices.refresh(index=pipeline.settings.index_alias)
    count = pipeline.es.count(index=pipeline.settings.index_alias, query={"term": {"post_id": post["id"]}})
    assert count["count"] == 1


@pytest.mark.parametrize("kill", [True, False], ids=["killed", "stopped"])
def test_worker_killed_or_stopped_midway_loses_nothing_and_keeps_one_document_per_post(
    pipeline: Pipeline, kill: bool
) -> None:
    posts = [make_post(f"jalan di Cikupa rusak parah nomor {i}, kapan dibenerin DPUPR?") for i in range(120)]
    keys = [pipeline.send_post(p) for p in posts[:60]]
    # let the worker get going, then kill it without a chance to commit, or stop it (SIGTERM) while it is
    # in the middle of the stream (it does not wait for its running batches: stream_wait_empty=False)
    wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys[:10], timeout=180)
    pipeline.restart_worker(kill=kill)
    keys += [pipeline.send_post(p) for p in posts[60:]]
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=300)
    assert tally.indexed == 120 and tally.dead_lettered == 0, tally
    pipeline.es.indices.refresh(index=pipeline.settings.index_alias)
    ids = [p["id"] for p in posts]
    count = pipeline.es.count(index=pipeline.settings.index_alias, query={"terms": {"post_id": ids}})
    assert count["count"] == 120


def test_dead_letter_reader_sees_every_letter(pipeline: Pipeline) -> None:
    run = uuid.uuid4().hex[:8]  # keys of this test alone
    bad = {f"x:binary-{run}-{i}": b"\xff\xfe not utf8 " + str(i).encode() for i in range(3)}
    for key, value in bad.items():
        pipeline.send_raw(value, key.encode())
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, list(bad), timeout=180)
    assert tally.dead_lettered == 3
    reader = DeadLetterReader(pipeline.settings, pipeline.endpoints.kafka)
    try:
        seen: dict[str, DeadLetter] = {}
        for _ in range(20):
            seen |= {k: dl for dl in reader.poll() if (k := dead_letter_key(dl)) in bad}
            if len(seen) == len(bad):
                break
        assert set(seen) == set(bad)
        for key, letter in seen.items():
            assert letter.stage == "decode" and "UTF-8" in letter.reason
            assert base64.b64decode(letter.original) == bad[key]
            assert letter.source_topic == pipeline.settings.topic_raw and letter.source_offset is not None
    finally:
        reader.close()
