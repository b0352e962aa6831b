"""The overdue_response digest on the real stack: a complaint to Dishub goes unanswered past its SLA (20 s
here) and Dishub's subscribers get the digest (a signed webhook, Telegram in English, e-mail in
Indonesian), a complaint staff marked is left out, another agency's subscriber gets nothing, and the same
period's digest published again (a replay, or a restarted worker raising it again) is not sent twice.
Digests come every 20 s on the test stack (PANTAU_RESPONSE_DIGEST_EVERY) instead of daily."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from tests.alert_receivers import SECRET, Receivers, SmtpServer, alerts_of
from tests.integration.conftest import Pipeline, make_post, pantau
from tests.waiting import eventually


def _record(pipeline: Pipeline, key: str) -> dict[str, Any] | None:
    index = pipeline.settings.responses_index
    if not pipeline.es.indices.exists(index=index):
        return None
    found = pipeline.es.options(ignore_status=404).get(index=index, id=key)
    return dict(found["_source"]) if found.get("found") else None


def _body(mail: Message, subtype: str) -> str:
    for part in mail.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/{subtype} part")


def _clear_backlog(pipeline: Pipeline, agency: str) -> None:
    """Staff handle the agency's unanswered complaints other tests left, so that this test's complaints are
    the oldest the digest names."""
    index = pipeline.settings.responses_index
    if not pipeline.es.indices.exists(index=index):
        return
    pipeline.es.indices.refresh(index=index)
    query = {
        "bool": {
            "filter": [{"term": {"agency": agency}}, {"terms": {"status": ["open", "overdue"]}}],
            "must_not": [{"exists": {"field": "mark"}}],
        }
    }
    for hit in pipeline.es.search(index=index, size=500, query=query)["hits"]["hits"]:
        done = pantau(
            "responsiveness", "mark", hit["_id"], "--handled-elsewhere", "--why", "backlog", "--by", "op"
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_overdue_complaints_reach_the_agencys_subscribers_once_per_period(
    pipeline: Pipeline, receivers: Receivers, smtp: SmtpServer
) -> None:
    run = uuid.uuid4().hex[:8]
    settings = pipeline.settings
    assert settings.alerts_file is not None
    api = receivers.url
    only_dishub = "    match: {kinds: [overdue_response], agencies: [dishub]}\n"
    settings.alerts_file.write_text(
        "subscribers:\n"
        f"  - name: dishub-hook\n    webhook: {{url: '{receivers.url}/hook/dishub', secret: {SECRET}}}\n"
        + only_dishub
        + f"  - name: dishub-tg\n    telegram: {{bot_token: '1:AA', chat_id: 7, api_base: '{api}'}}\n"
        + only_dishub
        + "    lang: en\n"
        + f"  - name: dishub-mail\n    email: {{to: [dishub@example.org], smtp_url: '{smtp.url}'}}\n"
        + only_dishub
        + f"  - name: bpbd-hook\n    webhook: {{url: '{receivers.url}/hook/bpbd', secret: {SECRET}}}\n"
        + "    match: {kinds: [overdue_response], agencies: [bpbd]}\n"
    )
    citizen = {"handle": f"warga_{run}", "id": f"u{run}"}
    _clear_backlog(pipeline, "dishub")
    try:
        # Marked not-a-complaint before the other complaint is even sent: no digest naming the second
        # complaint can be older than the mark.
        misread = make_post(
            f"@dishubbanten lampu jalan di blok {run}b padam, bahaya! kapan diperbaiki?",
            id=f"mis{run}",
            conversation_id=f"mis{run}",
            created_at=datetime.now(UTC).isoformat(),
            author=citizen,
        )
        misread_key = f"x:mis{run}"
        pipeline.send_post(misread)
        eventually(
            lambda: _record(pipeline, f"{misread_key}|dishub"), 240, "no record of the misread complaint"
        )
        marked = pantau(
            "responsiveness", "mark", f"{misread_key}|dishub", "--not-a-complaint", "--why", "x", "--by", "op"
        )
        assert marked.returncode == 0, marked.stdout + marked.stderr
        eventually(
            lambda: (_record(pipeline, f"{misread_key}|dishub") or {}).get("mark"), 120, "mark not kept"
        )

        late = make_post(
            f'@dishubbanten lampu merah di simpang blok {run}a mati <script>alert(1)</script><b onclick="x">'
            "bahaya</b>! kapan diperbaiki?",
            id=f"late{run}",
            conversation_id=f"late{run}",
            created_at=datetime.now(UTC).isoformat(),
            author=citizen,
        )
        late_key = f"x:late{run}"
        pipeline.send_post(late)
        eventually(
            lambda: (_record(pipeline, f"{late_key}|dishub") or {}).get("status") == "overdue",
            240,
            lambda: f"not overdue: {_record(pipeline, f'{late_key}|dishub')}",
        )

        def digests() -> list[tuple[Any, dict[str, Any]]]:
            return [
                (r, a)
                for r in receivers.of("webhook", "dishub")
                for a in alerts_of([r])
                if a["kind"] == "overdue_response" and late_key in [e["key"] for e in a["examples"]]
            ]

        first_received, first = eventually(digests, 120, lambda: f"no digest: {receivers.received}")[0]
        assert first_received.verified and first["agencies"] == ["dishub"] and first["count"] >= 1
        assert first["key"] == "overdue_response:agency=dishub" and first["severity"] == "warning"
        assert misread_key not in [e["key"] for e in first["examples"]]
        # the alerts index has it too, under its id
        pipeline.es.indices.refresh(index=settings.alerts_index)
        indexed = pipeline.es.get(index=settings.alerts_index, id=first["id"])["_source"]
        assert indexed["kind"] == "overdue_response"

        telegram = eventually(
            lambda: [r for r in receivers.of("telegram") if f"{run}a" in r.json()["text"]],
            60,
            lambda: f"no telegram digest: {receivers.of('telegram')}",
        )
        assert all(r.verified for r in receivers.of("telegram"))  # only Telegram's tags: the post escaped
        text = telegram[0].json()["text"]
        assert "Overdue complaints" in text and "DISHUB" in text and "&lt;script&gt;" in text
        assert f"{run}b" not in text

        mails = eventually(
            lambda: [m for m in smtp.inbox.messages if f"{run}a" in _body(m, "plain")],
            60,
            "no e-mail digest",
        )
        assert str(mails[0]["Subject"]).startswith("Keluhan belum ditanggapi")
        page = _body(mails[0], "html")
        assert "<script>" not in page and "&lt;script&gt;" in page and "belum ditanggapi" in page

        # Published again (a replay; a restarted worker raises the period's digest the same way): found in
        # the delivery log, not sent. The next period's digest, published after it on the same key (one
        # partition, in order), shows the deliverer has read past it.
        replayed_at = datetime.now(UTC)
        pipeline.producer.send(
            settings.topic_alerts, key=first["key"].encode(), value=json.dumps(first).encode()
        ).get(timeout=30)
        eventually(
            lambda: [
                a
                for _, a in digests()
                if datetime.fromisoformat(a["window_start"]) > replayed_at and a["id"] != first["id"]
            ],
            120,
            "no digest of the next period",
        )
        sent = [r for r, a in digests() if a["id"] == first["id"]]
        assert len(sent) == 1, [r.headers["webhook-id"] for r in sent]
        hook_ids = [r.headers["webhook-id"] for r in receivers.of("webhook", "dishub")]
        assert len(hook_ids) == len(set(hook_ids)), hook_ids
        assert not [a for a in alerts_of(receivers.of("webhook", "bpbd")) if late_key in str(a["examples"])]
    finally:
        settings.alerts_file.write_text("subscribers: []\n")
