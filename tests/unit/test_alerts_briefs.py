"""Scheduled briefs without the worker: the ``brief:`` option of a subscriber (validated, with errors
naming the line), the period it names, and the two ways a brief travels, each against a loopback stand-in:
Telegram ``sendDocument`` as multipart/form-data, and e-mail with the files attached over STARTTLS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pipeline.alerts.briefs import BriefFile, brief_ref, send_brief, title
from pipeline.alerts.channels import SendError
from pipeline.alerts.subscribers import SubscribersError, parse_subscribers
from schemas.subscribers import JAKARTA, BriefSchedule, Subscriber
from tests.alert_receivers import Receivers, SmtpServer

NOW = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)  # Thursday 12:00 WIB
PAGE = b"<!DOCTYPE html><html><body><p>&lt;script&gt;</p><svg></svg></body></html>"


def _subscriber(yaml_text: str) -> Subscriber:
    return parse_subscribers("subscribers:\n" + yaml_text, "alerts.yaml", env={}).subscribers[0]


def test_the_brief_option_parses_and_names_its_period() -> None:
    sub = _subscriber(
        "  - name: kepala-dinas\n    email: {to: kadis@dishub.bantenprov.go.id}\n"
        "    match: {kinds: []}\n"
        '    brief: {every: weekly, at: "Mon 07:00", agency: dishub, region: 3673, pdf: true}\n'
    )
    assert sub.brief is not None and sub.brief.region == "3673" and sub.brief.pdf
    due = sub.brief.due(NOW)
    assert due == datetime(2026, 11, 30, 7, 0, tzinfo=JAKARTA)  # the Monday before
    assert sub.brief.due(datetime(2026, 11, 30, 0, 0, tzinfo=UTC)) == due  # Monday 07:00 WIB itself
    assert sub.brief.due(datetime(2026, 11, 29, 23, 59, tzinfo=UTC)) < due  # a minute before: last week's
    assert brief_ref(due) == "brief:2026-11-30T00:00:00+00:00"
    assert title(sub.brief, due, "id") == "Ringkasan Pantau Banten 23-11–30-11-2026 (DISHUB · 3673)"
    daily = BriefSchedule(every="daily", at="18:30")
    assert daily.due(NOW) == datetime(2026, 12, 2, 18, 30, tzinfo=JAKARTA)
    assert sub.match.kinds == []  # a brief only: no alert matches an empty list of kinds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "  - name: a\n    slack: {url: 'http://x/y'}\n    brief: {every: weekly}\n",
            "alerts.yaml:2: subscribers[0]: brief: goes by email or telegram only, not slack",
        ),
        (
            "  - name: a\n    email: {to: a@b.c}\n    brief: {every: weekly, at: '07:00'}\n",
            "alerts.yaml:4: subscribers[0].brief: at: '07:00' is not a weekday and a time, "
            'e.g. "Mon 07:00"',
        ),
        (
            "  - name: a\n    email: {to: a@b.c}\n    brief: {every: monthly}\n",
            "alerts.yaml:4: subscribers[0].brief.every: Input should be 'daily' or 'weekly'",
        ),
        (
            "  - name: a\n    email: {to: a@b.c}\n    brief: {every: daily, at: 'Mon 07:00'}\n",
            "alerts.yaml:4: subscribers[0].brief: at: 'Mon 07:00' is not a time, e.g. \"07:00\"",
        ),
    ],
)
def test_a_wrong_brief_option_names_its_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(SubscribersError) as caught:
        parse_subscribers("subscribers:\n" + text, "alerts.yaml", env={})
    assert caught.value.lines == [expected]


def _send(sub: Subscriber, files: list[BriefFile], smtp_url: str | None = None) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            await send_brief(client, sub, "Ringkasan Pantau Banten <1>", files, sub.lang, smtp_url, 5.0)

    asyncio.run(go())


def test_telegram_gets_each_file_as_a_multipart_send_document(receivers: Receivers) -> None:
    sub = _subscriber(
        f"  - name: tg\n    telegram: {{bot_token: '9:ZZ', chat_id: -100, api_base: '{receivers.url}'}}\n"
        "    brief: {every: daily, at: '07:00'}\n"
    )
    files = [BriefFile("b.html", PAGE, "text/html"), BriefFile("b.pdf", b"%PDF-1.4 x", "application/pdf")]
    _send(sub, files)
    got = receivers.of("telegram-document", "9:ZZ")
    assert [r.verified for r in got] == [True, True]
    assert [(r.headers["filename"], r.headers["content-type"], r.body) for r in got] == [
        ("b.html", "text/html", PAGE),
        ("b.pdf", "application/pdf", b"%PDF-1.4 x"),
    ]
    assert got[0].headers["chat_id"] == "-100" and got[0].headers["parse_mode"] == "HTML"
    assert got[0].headers["caption"] == "<b>Ringkasan Pantau Banten &lt;1&gt;</b>"
    assert receivers.of("telegram") == []  # no sendMessage


def test_telegram_refusing_the_document_is_a_send_error(receivers: Receivers) -> None:
    sub = _subscriber(
        f"  - name: tg\n    telegram: {{bot_token: '8:YY', chat_id: 5, api_base: '{receivers.url}'}}\n"
    )
    with pytest.raises(SendError) as caught:
        _send(sub, [BriefFile("empty.html", b"", "text/html")])  # the stand-in refuses an empty file
    assert not caught.value.retryable and "400" in caught.value.reason


def test_email_attaches_the_files_over_starttls(tmp_path: Path) -> None:
    server = SmtpServer(tmp_path).start()
    try:
        sub = _subscriber("  - name: mail\n    email: {to: kadis@dishub.bantenprov.go.id}\n    lang: en\n")
        files = [BriefFile("b.html", PAGE, "text/html"), BriefFile("b.pdf", b"%PDF-1.4 x", "application/pdf")]
        _send(sub, files, smtp_url=server.url)
        (mail,) = server.inbox.messages
        assert (
            mail["Subject"] == "Ringkasan Pantau Banten <1>" and mail["To"] == "kadis@dishub.bantenprov.go.id"
        )
        attached = {
            p.get_filename(): (p.get_content_type(), p.get_payload(decode=True))
            for p in mail.walk()
            if p.get_filename()
        }
        assert attached == {"b.html": ("text/html", PAGE), "b.pdf": ("application/pdf", b"%PDF-1.4 x")}
        body = next(p for p in mail.walk() if p.get_content_type() == "text/plain" and not p.get_filename())
        assert "attached" in body.get_payload(decode=True).decode()
    finally:
        server.stop()
