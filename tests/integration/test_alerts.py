"""Alerts on the real stack: a planted spike and an emergency reach subscribers within seconds, signed;
a quiet agency's subscriber gets nothing; backfilled history is indexed but never delivered; a subscriber
answering 500 is retried (and finally dead-lettered) while the others receive on time."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.tracking import wait_processed
from tests.alert_receivers import SECRET, Receivers, alerts_of
from tests.integration.conftest import Pipeline
from tests.waiting import eventually


def _post(text: str, at: datetime) -> dict[str, Any]:
    return {"id": f"al{uuid.uuid4().hex[:12]}", "platform": "x", "text": text, "created_at": at.isoformat()}


def test_spike_and_emergency_are_delivered_and_history_is_not(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    receivers.status["broken"] = 500
    hook = f"{receivers.url}/hook"
    assert pipeline.settings.alerts_file is not None
    pipeline.settings.alerts_file.write_text(
        "subscribers:\n"
        f"  - name: ops\n    webhook: {{url: '{hook}/ops', secret: {SECRET}}}\n"
        f"  - name: broken\n    webhook: {{url: '{hook}/broken', secret: {SECRET}}}\n"
        f"    match: {{kinds: [spike, emergency]}}\n"
        f"  - name: dukcapil\n    webhook: {{url: '{hook}/dukcapil', secret: {SECRET}}}\n"
        "    match: {agencies: [dukcapil]}\n"
        f"  - name: bpbd-tg\n    telegram: {{bot_token: '1:AA', chat_id: 42, api_base: '{receivers.url}'}}\n"
        "    match: {kinds: [emergency], min_severity: warning}\n"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    # four days of one PDAM complaint an hour in Kota Serang, and an emergency two days ago (backfill)
    history = [
        _post(
            f"air pdam kota serang mati lagi jam {h % 24}, keran kering", now - timedelta(hours=h, minutes=1)
        )
        for h in range(1, 4 * 24)
    ]
    history += [
        _post(
            f"tolong banjir besar di rangkasbitung lebak, warga terjebak #{i}",
            now - timedelta(days=2, minutes=i),
        )
        for i in range(4)
    ]
    keys = [pipeline.send_post(p) for p in history]
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=600)
    assert tally.indexed + tally.dead_lettered == len(keys), tally
    time.sleep(3)  # detection reads the enriched topic on its own; let it catch up with the history

    sent_at = time.time()
    live = [_post(f"pdam kota serang air mati total dari pagi #{i}", now) for i in range(12)]
    live += [
        _post(f"darurat banjir bandang di pandeglang, tolong evakuasi warga #{i}", now) for i in range(4)
    ]
    for p in live:
        pipeline.send_post(p)

    def delivered() -> list[dict[str, Any]]:
        alerts = alerts_of(receivers.of("webhook", "ops"))
        kinds = {a["kind"] for a in alerts}
        return alerts if {"spike", "emergency"} <= kinds else []

    alerts = eventually(delivered, 120, f"ops got {[r.body[:200] for r in receivers.of('webhook')]}")
    ops = receivers.of("webhook", "ops")
    assert all(r.verified for r in ops)
    first = {a["kind"]: t for r in ops for a in alerts_of([r]) for t in [r.at]}
    assert first["spike"] - sent_at < 60 and first["emergency"] - sent_at < 60
    spike = next(a for a in alerts if a["kind"] == "spike" and "pdam" in a["key"])
    assert spike["count"] >= 5 and spike["expected"] <= 2
    emergency = next(a for a in alerts if a["kind"] == "emergency")
    assert emergency["region"] == "3601" and emergency["severity"] == "critical"
    # the backfilled emergency in Lebak is in the index, and was sent to no one
    assert not [a for a in alerts if a["key"] == "emergency:region=3602"]
    es, index = pipeline.es, pipeline.settings.alerts_index
    es.indices.refresh(index=index)
    old = es.search(index=index, query={"term": {"key": "emergency:region=3602"}})["hits"]["hits"]
    assert old, "the backfilled emergency was not indexed"
    assert receivers.of("webhook", "dukcapil") == []
    telegram = eventually(lambda: receivers.of("telegram"), 30, "no Telegram message")
    assert telegram[0].verified and "Pandeglang" in telegram[0].json()["text"]
    # the broken subscriber: tried again and again, while ops had its alerts at once
    broken = eventually(
        lambda: (got := receivers.of("webhook", "broken"))[2:] and got,
        60,
        "broken was not retried",
    )
    assert broken[-1].at > first["emergency"]
    deliveries = pipeline.settings.deliveries_index

    def failed_for_good() -> list[Any]:
        es.indices.refresh(index=deliveries)
        query = {"bool": {"filter": [{"term": {"subscriber": "broken"}}, {"term": {"status": "failed"}}]}}
        return list(es.search(index=deliveries, query=query)["hits"]["hits"])

    eventually(failed_for_good, 60, "the broken subscriber's delivery never ended as failed")
    sent = receivers.of("webhook", "ops")
    # a redelivery of the same alert would carry the same webhook-id: none was sent twice
    ids = [r.headers["webhook-id"] for r in sent]
    assert len(ids) == len(set(ids))


def test_cli_lists_dry_runs_and_silences(pipeline: Pipeline, receivers: Receivers) -> None:
    import json

    from tests.integration.conftest import pantau

    listed = pantau("alerts", "list", "--since", "1h", "--json")
    assert listed.returncode == 0, listed.stderr
    keys = {json.loads(line)["key"] for line in listed.stdout.splitlines()}
    assert "spike:agency=pdam,region=3673" in keys and "emergency:region=3601" in keys
    assert "emergency:region=3602" in keys  # backfilled, indexed (not delivered)

    before = len(receivers.received)
    dry = pantau("alerts", "test-rule", "--since", "3d", "--json")
    assert dry.returncode == 0, dry.stderr
    dry_keys = {json.loads(line)["key"] for line in dry.stdout.splitlines()}
    assert "spike:agency=pdam,region=3673" in dry_keys and "emergency:region=3602" in dry_keys
    time.sleep(2)
    assert len(receivers.received) == before  # a dry run sends nothing

    made = pantau("alerts", "silence", "--region", "3604", "--for", "1h", "--reason", "drill")
    assert made.returncode == 0, made.stderr
    silence_id = made.stdout.split(":")[0].strip()
    shown = pantau("alerts", "silences")
    assert silence_id in shown.stdout and "region=3604" in shown.stdout and "drill" in shown.stdout
    time.sleep(11)  # the worker re-reads silences every 10 s
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(4):
        pipeline.send_post(_post(f"tolong kebakaran besar di kabupaten serang, warga terjebak #{i}", now))
    es, index = pipeline.es, pipeline.settings.alerts_index
    eventually(
        lambda: (
            es.indices.refresh(index=index)
            and es.search(index=index, query={"term": {"key": "emergency:region=3604"}})["hits"]["hits"]
        ),
        60,
        "no emergency in Kab. Serang",
    )
    time.sleep(3)
    assert not [a for a in alerts_of(receivers.of("webhook", "ops")) if a["key"] == "emergency:region=3604"]
    assert pantau("alerts", "unsilence", silence_id).returncode == 0
    assert silence_id not in pantau("alerts", "silences").stdout
    assert pantau("alerts", "unsilence", silence_id).returncode == 2

    subs = pantau("subscribers", "list")
    assert subs.returncode == 0 and "bpbd-tg" in subs.stdout and "telegram" in subs.stdout
    tested = pantau("subscribers", "test", "ops")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    marked = [a for a in alerts_of(receivers.of("webhook", "ops")) if a.get("test")]
    assert marked and "uji" in marked[-1]["summary"]
    assert pantau("subscribers", "test", "nobody").returncode == 2


def test_a_worker_killed_between_detection_and_delivery_loses_nothing(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    es, index = pipeline.es, pipeline.settings.alerts_index
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(3):
        pipeline.send_post(_post(f"tolong longsor di cilegon, rumah warga tertimbun #{i}", now))

    def detected() -> list[Any]:
        es.indices.refresh(index=index)
        return list(es.search(index=index, query={"term": {"key": "emergency:region=3672"}})["hits"]["hits"])

    eventually(detected, 120, "no emergency in Kota Cilegon")
    pipeline.restart_worker(kill=True)  # within group_wait: detected, not yet delivered (or just)

    def delivered() -> list[Any]:
        return [
            r
            for r in receivers.of("webhook", "ops")
            if any(a["key"] == "emergency:region=3672" for a in alerts_of([r]))
        ]

    got = eventually(delivered, 180, "the emergency detected before the kill was never delivered")
    time.sleep(5)
    got = delivered()
    firing = [r for r in got if any(a["status"] == "firing" for a in alerts_of([r]))]
    assert len({r.headers["webhook-id"] for r in firing}) == 1, [r.headers for r in firing]


def test_a_still_firing_alert_is_sent_again_after_repeat_interval(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    path = pipeline.settings.alerts_file
    assert path is not None
    path.write_text(
        path.read_text()
        + f"  - name: nag\n    webhook: {{url: '{receivers.url}/hook/nag', secret: {SECRET}}}\n"
        + "    match: {kinds: [emergency], regions: ['3671']}\n    repeat_interval: 3\n"
    )
    time.sleep(1)
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(3):
        pipeline.send_post(_post(f"tolong kebakaran gudang di kota tangerang, api membesar #{i}", now))
    got = eventually(
        lambda: (got := receivers.of("webhook", "nag"))[1:] and got,
        120,
        f"nag got {receivers.of('webhook', 'nag')}",
    )
    first, again = got[0], got[1]
    assert first.json()["key"] == "emergency:region=3671" == again.json()["key"]
    assert again.headers["webhook-id"] == first.headers["webhook-id"] + "_r1"
    assert again.at - first.at >= 3
