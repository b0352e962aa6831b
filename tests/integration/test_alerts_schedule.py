"""Quiet hours and digests on the real stack: in a subscriber's quiet hours only a critical emergency goes
out, the rest waits in ``pantau-deliveries`` and goes out when the quiet hours end; a digest subscriber
gets one digest at ``digest_at`` holding what came before it. The times are Asia/Jakarta clock times in
the subscribers file (read again on change), set seconds ahead of the wall clock."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.tracking import wait_processed
from tests.alert_receivers import SECRET, Receivers, alerts_of
from tests.integration.conftest import Pipeline
from tests.waiting import eventually

JAKARTA = ZoneInfo("Asia/Jakarta")
TOKEN = "9:DIGEST"


def _post(text: str, at: datetime) -> dict[str, Any]:
    return {"id": f"qh{uuid.uuid4().hex[:12]}", "platform": "x", "text": text, "created_at": at.isoformat()}


def _clock(at: datetime) -> str:
    return at.astimezone(JAKARTA).strftime("%H:%M:%S")


def _file(receivers: Receivers, quiet_hours: str, digest_at: str) -> str:
    return (
        "subscribers:\n"
        f"  - name: night\n    webhook: {{url: '{receivers.url}/hook/night', secret: {SECRET}}}\n"
        f"    match: {{kinds: [spike, emergency], regions: ['3674']}}\n    quiet_hours: '{quiet_hours}'\n"
        f"  - name: morning\n    telegram: {{bot_token: '{TOKEN}', chat_id: 7,"
        f" api_base: '{receivers.url}'}}\n"
        f"    match: {{kinds: [spike, emergency], regions: ['3674']}}\n"
        f"    mode: digest\n    digest_at: '{digest_at}'\n"
    )


def test_quiet_hours_hold_all_but_critical_emergencies_and_digests_wait_for_digest_at(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    path = pipeline.settings.alerts_file
    assert path is not None
    start = datetime.now(UTC)
    quiet_from = _clock(start - timedelta(hours=1))
    path.write_text(
        _file(
            receivers,
            f"{quiet_from}-{_clock(start + timedelta(hours=1))}",
            _clock(start - timedelta(hours=12)),
        )
    )
    now = start.replace(microsecond=0)
    # one post four days old gives the detector its baseline period (no Samsat posts in it)
    old = pipeline.send_post(_post("jalan rusak di pandeglang belum diperbaiki", now - timedelta(days=4)))
    live = [_post(f"tolong banjir besar di tangerang selatan, warga terjebak #{i}", now) for i in range(3)]
    live += [
        _post(f"antrean samsat di tangerang selatan panjang sekali, sistem error #{i}", now) for i in range(6)
    ]
    keys = [old] + [pipeline.send_post(p) for p in live]
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=300)
    assert tally.indexed == len(keys), tally

    # in quiet hours: the critical emergency at once, nothing else
    def night() -> list[dict[str, Any]]:
        return alerts_of(receivers.of("webhook", "night"))

    eventually(lambda: [a for a in night() if a["kind"] == "emergency"], 60, f"night got {night()}")
    first = receivers.of("webhook", "night")[0]
    assert first.verified and {(a["kind"], a["severity"]) for a in alerts_of([first])} == {
        ("emergency", "critical")
    }

    es, index = pipeline.es, pipeline.settings.deliveries_index

    def queued(subscriber: str) -> list[dict[str, Any]]:
        es.indices.refresh(index=index)
        query = {"bool": {"filter": [{"term": {"subscriber": subscriber}}, {"term": {"status": "queued"}}]}}
        hits = es.search(index=index, query=query, size=100)["hits"]["hits"]
        return [json.loads(h["_source"]["alert"]) for h in hits]

    eventually(lambda: [a for a in queued("night") if a["kind"] == "spike"], 60, "no spike queued for night")
    eventually(
        lambda: {"spike", "emergency"} <= {a["kind"] for a in queued("morning")},
        60,
        f"morning's digest queue: {queued('morning')}",
    )
    time.sleep(3)  # later posts' spikes (region, category series) queue too
    held = {a["id"] for a in queued("night")}
    digest = {a["id"] for a in queued("morning")}
    assert "emergency" not in {a["kind"] for a in queued("night")}
    assert [a["kind"] for a in night()] == ["emergency"]  # the spikes were held
    assert receivers.of("telegram", TOKEN) == []  # before digest_at: nothing

    # the quiet hours end, and the digest time comes, a few seconds from now
    end = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)  # the file's clock has seconds
    path.write_text(_file(receivers, f"{quiet_from}-{_clock(end)}", _clock(end)))

    def night_spikes() -> list[Any]:
        return [r for r in receivers.of("webhook", "night") if "spike" in {a["kind"] for a in alerts_of([r])}]

    after_quiet = eventually(night_spikes, 60, "the held spikes never went out after the quiet hours")
    sent = eventually(lambda: receivers.of("telegram", TOKEN), 60, "no digest at digest_at")
    time.sleep(3)
    after_quiet = night_spikes()
    early = [(r.at - end.timestamp(), alerts_of([r])) for r in after_quiet if r.at < end.timestamp()]
    assert not early, f"sent before the quiet hours ended (seconds, alerts): {early}"
    assert all(r.verified for r in after_quiet)
    assert held <= {a["id"] for a in alerts_of(after_quiet)}
    assert queued("night") == []
    (message,) = sent  # one digest holding every alert queued before digest_at
    assert message.at >= end.timestamp() and message.verified
    text = message.json()["text"]
    assert "Ringkasan" in text and "Tangerang Selatan" in text
    assert not {a["id"] for a in queued("morning")} & digest
