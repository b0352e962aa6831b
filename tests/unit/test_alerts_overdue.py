"""The overdue_response digest without servers: its period, its stable ids, what it counts, how it reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.alerts.overdue import OverdueDigest, PostText
from pipeline.alerts.render import render
from schemas.alerts import AlertKind, alert_id
from schemas.responses import Mark, ResponseDocument
from schemas.vocab import Agency

NOW = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)  # 12:00 WIB
HOSTILE = '<script>alert(1)</script> lampu merah mati <b onmouseover="x">bahaya</b>'


def _doc(name: str, agency: str = "dishub", hours_ago: float = 100, **fields: Any) -> ResponseDocument:
    created = NOW - timedelta(hours=hours_ago)
    values: dict[str, Any] = {
        "key": f"x:{name}|{agency}",
        "complaint_key": f"x:{name}",
        "agency": agency,
        "platform": "x",
        "thread": f"x:{name}",
        "created_at": created,
        "due_at": created + timedelta(hours=72),
        "sla_s": 259_200,
        "status": "overdue",
        "updated_at": NOW,
    }
    return ResponseDocument.model_validate(values | fields)


def test_the_period_starts_at_the_digest_time_in_jakarta() -> None:
    daily = OverdueDigest("07:00", 86400)
    assert daily.period(NOW) == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)  # 07:00 WIB today
    before = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)  # 06:00 WIB on the 3rd: yesterday's digest
    assert daily.period(before) == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    short = OverdueDigest("07:00", 20)
    assert short.period(NOW + timedelta(seconds=45)) == NOW + timedelta(seconds=40)


def test_a_restart_or_replay_in_the_period_names_the_same_alert_and_the_next_period_a_new_one() -> None:
    docs = [_doc("a"), _doc("b", hours_ago=80)]

    def raise_at(now: datetime) -> list[str]:
        digest = OverdueDigest("07:00", 86400)  # a fresh instance: as a restarted worker
        return [a.id for a in digest.alerts(digest.overdue(docs, now), {}, now)]

    first = raise_at(NOW)
    period = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    assert first == raise_at(NOW + timedelta(hours=6)) == [alert_id("overdue_response:agency=dishub", period)]
    assert raise_at(NOW + timedelta(days=1)) != first


def test_only_unanswered_unmarked_records_past_their_sla_count_per_agency() -> None:
    mark = {"by": "operator", "why": "ditelepon", "at": NOW}
    docs = [
        _doc("late"),
        _doc("older", hours_ago=200),
        _doc("answered", first_response_s=60, status="answered_late"),
        _doc("phone", mark=Mark(kind="handled_elsewhere", **mark)),
        _doc("misread", mark=Mark(kind="not_a_complaint", **mark)),
        _doc("fresh", hours_ago=1, status="open"),
        _doc("flood", agency="bpbd"),
    ]
    digest = OverdueDigest()
    overdue = digest.overdue(docs, NOW)
    assert {a: [d.complaint_key for d in v] for a, v in overdue.items()} == {
        Agency.DISHUB: ["x:older", "x:late"],
        Agency.BPBD: ["x:flood"],
    }
    texts = {"x:older": PostText(HOSTILE, "https://x.com/warga/status/1")}
    alerts = {a.agencies[0]: a for a in digest.alerts(overdue, texts, NOW)}
    dishub = alerts[Agency.DISHUB]
    assert dishub.kind == AlertKind.OVERDUE_RESPONSE and dishub.count == 2
    assert dishub.key == "overdue_response:agency=dishub" and dishub.window_start == digest.period(NOW)
    assert [e.key for e in dishub.examples] == ["x:older", "x:late"]  # oldest first
    assert HOSTILE in dishub.examples[0].text and dishub.examples[0].url == "https://x.com/warga/status/1"
    assert dishub.examples[1].text.endswith("x:late")  # no post text found: its key
    assert "2 keluhan kepada DISHUB belum ditanggapi" in dishub.summary


def test_the_digest_renders_in_both_languages_with_post_text_escaped() -> None:
    digest = OverdueDigest(kibana_url="http://kibana:5601")
    overdue = digest.overdue([_doc("a")], NOW)
    (alert,) = digest.alerts(overdue, {"x:a": PostText(HOSTILE)}, NOW)
    assert alert.kibana_url and "dataViewId:'pantau-responses'" in alert.kibana_url
    indonesian, english = render([alert], "id"), render([alert], "en")
    assert indonesian.subject.startswith("Keluhan belum ditanggapi") and "DISHUB" in indonesian.subject
    assert english.subject.startswith("Overdue complaints")
    assert "1 complaints are still unanswered past the response deadline" in english.text
    for message in (indonesian, english):
        assert "<script>" not in message.telegram and "&lt;script&gt;" in message.telegram
        assert "<script>" not in message.html and "&lt;b onmouseover" in message.html
        assert HOSTILE in message.text
