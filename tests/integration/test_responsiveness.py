"""Agency responsiveness on the real stack: conversation threads with known reply times, produced as raw
posts, enriched by the worker, linked by the responsiveness agents and read back from the index and the
`pantau responsiveness` command."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.conftest import Pipeline, make_post, pantau

REPORT_FIELDS = {
    "agency",
    "complaints",
    "responded",
    "reply_rate",
    "median_first_response_s",
    "p90_first_response_s",
    "overdue",
}


def _record(pipeline: Pipeline, key: str) -> dict[str, Any] | None:
    index = pipeline.settings.responses_index
    if not pipeline.es.indices.exists(index=index):
        return None
    found = pipeline.es.options(ignore_status=404).get(index=index, id=key)
    return dict(found["_source"]) if found.get("found") else None


def _wait_for(
    pipeline: Pipeline, key: str, done: Callable[[dict[str, Any]], bool], timeout: float = 240
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = _record(pipeline, key)
        if record is not None and done(record):
            return record
        time.sleep(0.5)
    raise AssertionError(f"{key}: {record}")


def test_threads_with_known_reply_times_through_a_worker_restart(pipeline: Pipeline) -> None:
    run = uuid.uuid4().hex[:8]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

    def at(seconds: int) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    def ids(name: str) -> str:
        return f"{name}{run}"

    citizen = {"handle": f"warga_{run}", "id": f"u{run}"}
    # X: the agency's reply is produced before the complaint it answers.
    complaint_x = make_post(
        "@dpuprbanten jalan di ciruas rusak parah sudah 3 bulan, kapan diperbaiki? kecewa banget",
        id=ids("cx"),
        conversation_id=ids("cx"),
        created_at=at(0),
        author=citizen,
    )
    reply_x = make_post(
        "Mohon maaf atas ketidaknyamanannya, laporan sudah kami teruskan ke tim lapangan",
        id=ids("rx"),
        reply_to_id=ids("cx"),
        conversation_id=ids("cx"),
        created_at=at(600),
        author={"handle": "DPUPRBanten", "id": "dpupr-x"},
    )
    # Instagram: a comment under the agency's post, answered twice; the first answer counts.
    complaint_ig = make_post(
        "@pdamtirtaraharja air mati lagi sejak kemarin, kapan nyala? parah banget pelayanannya",
        id=ids("cig"),
        platform="instagram",
        reply_to_id=ids("pig"),
        conversation_id=ids("pig"),
        created_at=at(60),
        author=citizen,
    )
    first_ig, second_ig = (
        make_post(
            "Mohon maaf atas ketidaknyamanannya, laporan sudah kami teruskan ke tim lapangan",
            id=ids(name),
            platform="instagram",
            reply_to_id=ids("cig"),
            conversation_id=ids("pig"),
            created_at=at(60 + delay),
            author={"handle": "pdam_tirtaraharja_official"},
        )
        for name, delay in (("r1ig", 300), ("r2ig", 900))
    )
    # Another agency's account answers a complaint to BPBD: BPBD's clock keeps running.
    complaint_bpbd = make_post(
        "@bpbdbanten banjir di kampung kami belum surut, kenapa belum ada bantuan?",
        id=ids("cb"),
        conversation_id=ids("cb"),
        created_at=at(120),
        author=citizen,
    )
    wrong_agency = make_post(
        "Mohon maaf atas ketidaknyamanannya, laporan sudah kami teruskan ke tim lapangan",
        id=ids("rb"),
        reply_to_id=ids("cb"),
        conversation_id=ids("cb"),
        created_at=at(180),
        author={"handle": "dpuprbanten"},
    )
    # Dishub's SLA is 20 s on the test stack: never answered, it turns overdue.
    complaint_dishub = make_post(
        "@dishubbanten lampu merah di simpang ciceri mati, bahaya! kapan diperbaiki?",
        id=ids("cd"),
        conversation_id=ids("cd"),
        created_at=datetime.now(UTC).isoformat(),
        author=citizen,
    )

    # Replies wait in the thread state for their complaints, across a killed worker.
    for post in (reply_x, second_ig, complaint_bpbd):
        pipeline.send_post(post)
    _wait_for(pipeline, f"x:{ids('cb')}|bpbd", lambda r: True)
    pipeline.restart_worker(kill=True)
    for post in (complaint_x, complaint_ig, first_ig, wrong_agency, complaint_dishub):
        pipeline.send_post(post)

    x = _wait_for(pipeline, f"x:{ids('cx')}|dpupr", lambda r: r["first_response_s"] is not None)
    assert (x["first_response_s"], x["status"], x["responder"]) == (600, "answered", "DPUPRBanten")
    assert x["response_key"] == f"x:{ids('rx')}" and x["region"] == "3604"
    ig = _wait_for(pipeline, f"instagram:{ids('cig')}|pdam", lambda r: r["first_response_s"] == 300)
    assert ig["response_key"] == f"instagram:{ids('r1ig')}" and ig["status"] == "answered"
    dishub = _wait_for(pipeline, f"x:{ids('cd')}|dishub", lambda r: r["status"] == "overdue", timeout=120)
    assert dishub["first_response_at"] is None and dishub["sla_s"] == 20
    bpbd = _record(pipeline, f"x:{ids('cb')}|bpbd")
    assert bpbd is not None and bpbd["status"] == "open" and bpbd["first_response_at"] is None
    assert _record(pipeline, f"x:{ids('cb')}|dpupr") is None  # the complaint did not address DPUPR

    pipeline.es.indices.refresh(index=pipeline.settings.responses_index)  # searchable, as a while later
    report = pantau("responsiveness", "--since", "1d", "--agency", "dishub", "--json")
    assert report.returncode == 0, report.stderr
    (row,) = json.loads(report.stdout)
    assert set(row) == REPORT_FIELDS and row["overdue"] >= 1 and row["complaints"] >= row["overdue"]
    by_region = json.loads(pantau("responsiveness", "--since", "1d", "--by", "region", "--json").stdout)
    assert {"agency": "dpupr", "region": "3604"}.items() <= next(
        r for r in by_region if r["agency"] == "dpupr" and r["region"] == "3604"
    ).items()
    assert all(set(r) == REPORT_FIELDS | {"region"} for r in by_region)

    # Staff mark the overdue complaint as answered by phone: it leaves the overdue count.
    before = row["overdue"]
    marked = pantau(
        "responsiveness",
        "mark",
        f"x:{ids('cd')}|dishub",
        "--handled-elsewhere",
        "--why",
        "ditelepon",
        "--by",
        "operator",
    )
    assert marked.returncode == 0, marked.stdout + marked.stderr
    record = _wait_for(pipeline, f"x:{ids('cd')}|dishub", lambda r: r["mark"] is not None)
    assert record["mark"]["kind"] == "handled_elsewhere" and record["mark"]["by"] == "operator"
    assert record["status"] == "open"
    pipeline.es.indices.refresh(index=pipeline.settings.responses_index)
    after = json.loads(pantau("responsiveness", "--since", "1d", "--agency", "dishub", "--json").stdout)
    assert after[0]["overdue"] == before - 1
    unknown = pantau("responsiveness", "mark", "x:nope|dishub", "--not-a-complaint", "--why", "x")
    assert unknown.returncode == 1


def test_a_thread_the_table_lost_is_read_back_from_the_index(pipeline: Pipeline) -> None:
    """As after an embedded broker restart: the complaint is only in pantau-responses, its reply comes now."""
    from pipeline.gazetteer.accounts import OfficialAccounts
    from pipeline.responsiveness.clock import SlaClock
    from pipeline.responsiveness.stage import AgencyClock, Complaint, ResponsivenessStage
    from schemas.vocab import Platform

    run = uuid.uuid4().hex[:8]
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    complaint = Complaint(
        key=f"x:lost{run}",
        id=f"lost{run}",
        platform=Platform.X,
        created_at=created,
        conversation_id=f"lost{run}",
        region="3604",
        clocks={"bpbd": AgencyClock(due_at=created + timedelta(days=3), sla_s=259_200)},
    )
    stage = ResponsivenessStage(OfficialAccounts([]), SlaClock(259_200), pipeline.settings.responses_index)
    action = stage.document(f"x:lost{run}", complaint, "bpbd", datetime.now(UTC))
    pipeline.es.index(index=action.index, id=action.key, document=action.source, refresh=True)
    pipeline.send_post(
        make_post(
            "Terima kasih laporannya, tim kami sudah menuju lokasi",
            id=f"reply{run}",
            reply_to_id=f"lost{run}",
            conversation_id=f"lost{run}",
            created_at=(created + timedelta(minutes=45)).isoformat(),
            author={"handle": "@BPBDBanten"},
        )
    )
    record = _wait_for(pipeline, f"x:lost{run}|bpbd", lambda r: r["first_response_s"] is not None)
    assert record["first_response_s"] == 2700 and record["status"] == "answered"
    assert record["region"] == "3604" and record["responder"] == "@BPBDBanten"


def test_the_brief_counts_responsiveness_as_the_report_does(pipeline: Pipeline) -> None:
    """The brief reads the configured responses index (here test-responses) and counts with the report's
    summarise: a record marked not-a-complaint counts nowhere, one handled elsewhere is never overdue."""
    from pipeline.brief.data import Indices, Period, collect
    from pipeline.brief.render import render
    from pipeline.responsiveness.report import read_documents, summarise
    from schemas.responses import Mark, ResponseDocument

    run = uuid.uuid4().hex[:8]
    start = datetime(2026, 3, 2, tzinfo=UTC)  # a week no other test writes complaints in
    period = Period(start=start, end=start + timedelta(days=7))
    now = datetime.now(UTC)

    def record(name: str, **fields: Any) -> ResponseDocument:
        created = start + timedelta(hours=len(name))
        values: dict[str, Any] = {
            "key": f"x:{name}{run}|dishub",
            "complaint_key": f"x:{name}{run}",
            "agency": "dishub",
            "platform": "x",
            "thread": f"x:{name}{run}",
            "created_at": created,
            "due_at": created + timedelta(hours=72),
            "sla_s": 259_200,
            "status": "open",
            "updated_at": now,
        }
        return ResponseDocument.model_validate(values | fields)

    marked = {"by": "operator", "why": "salah baca", "at": now}
    docs = [
        record("answered", first_response_s=600, status="answered", first_response_at=start),
        record("overdue", status="overdue"),
        record("misread", mark=Mark(kind="not_a_complaint", **marked)),
        record("byphone", mark=Mark(kind="handled_elsewhere", **marked)),
    ]
    index = pipeline.settings.responses_index
    for doc in docs:
        pipeline.es.index(index=index, id=doc.key, document=doc.model_dump(mode="json"))
    pipeline.es.indices.refresh(index=index)

    data = collect(pipeline.es, Indices.of(pipeline.settings), period, agency="dishub")
    (row,) = data.responsiveness or []
    assert (row.agency, row.complaints, row.responded, row.overdue) == ("dishub", 3, 1, 1)
    assert row.median_first_response_s == 600
    assert [row] == summarise(
        read_documents(pipeline.es, index, start, "dishub", until=period.end), period.end, False
    )
    page = render(data)
    assert "3 keluhan" in page and "1 lewat batas waktu" in page
