"""Scheduled briefs on the real stack: subscribers with ``brief:`` get the period's HTML brief from the
worker, as a Telegram document (multipart ``sendDocument``) and as an e-mail with the HTML and the PDF
attached; the delivery log in Elasticsearch keeps a killed and restarted worker from sending it again."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import Message

from pipeline.alerts.briefs import brief_ref
from pipeline.alerts.store import message_id
from pipeline.tracking import wait_processed
from schemas.subscribers import JAKARTA, BriefSchedule
from tests.alert_receivers import Receivers, SmtpServer
from tests.integration.conftest import Pipeline, make_post
from tests.waiting import eventually


def _attachments(mail: Message) -> dict[str, bytes]:
    out = {}
    for part in mail.walk():
        if part.get_filename():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out[str(part.get_filename())] = payload
    return out


def test_the_brief_goes_out_once_per_period_across_a_worker_restart(
    pipeline: Pipeline, receivers: Receivers, smtp: SmtpServer
) -> None:
    settings = pipeline.settings
    assert settings.alerts_file is not None
    api = receivers.url
    weekly = BriefSchedule(every="weekly", at="Mon 07:00")
    daily = BriefSchedule(every="daily", at="07:00")
    subscribers = (
        "subscribers:\n"
        f"  - name: kadis-tg\n    telegram: {{bot_token: '5:KA', chat_id: 11, api_base: '{api}'}}\n"
        "    match: {kinds: []}\n"
        '    brief: {every: weekly, at: "Mon 07:00", lang: en}\n'
        f"  - name: kadis-mail\n    email: {{to: kadis@dishub.example.org, smtp_url: '{smtp.url}'}}\n"
        "    match: {kinds: []}\n"
        '    brief: {every: daily, at: "07:00", agency: dishub, pdf: true}\n'
    )
    key = pipeline.send_post(make_post("@dishubbanten lampu merah di simpang ciceri mati, kapan diperbaiki?"))
    wait_processed(settings, pipeline.endpoints.kafka, pipeline.es, [key], timeout=300)  # a posts index
    settings.alerts_file.write_text(subscribers)
    try:
        now = datetime.now(UTC)
        documents = eventually(
            lambda: receivers.of("telegram-document", "5:KA"),
            180,
            lambda: f"no document: {receivers.received}",
        )
        (document,) = documents
        assert document.verified
        week_end = weekly.due(now)
        assert document.headers["filename"] == f"pantau-brief-{week_end.astimezone(JAKARTA):%Y-%m-%d}.html"
        assert document.headers["content-type"] == "text/html"
        page = document.body.decode()
        assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page
        assert "Pantau Banten brief" in document.headers["caption"]

        (mail,) = eventually(lambda: smtp.inbox.messages, 180, "no e-mail with the brief")
        day_end = daily.due(now)
        name = f"pantau-brief-{day_end.astimezone(JAKARTA):%Y-%m-%d}"
        files = _attachments(mail)
        assert set(files) == {f"{name}.html", f"{name}.pdf"}
        assert files[f"{name}.pdf"].startswith(b"%PDF") and b'<html lang="id">' in files[f"{name}.html"]
        assert str(mail["Subject"]).startswith("Ringkasan Pantau Banten") and "DISHUB" in str(mail["Subject"])

        pipeline.es.indices.refresh(index=settings.deliveries_index)
        logged = pipeline.es.get(
            index=settings.deliveries_index, id="delivery:" + message_id("kadis-tg", brief_ref(week_end), 1)
        )["_source"]
        assert logged["status"] == "sent" and logged["channel"] == "telegram"

        # A killed worker forgets everything it held in memory; the log in Elasticsearch remains.
        pipeline.restart_worker(kill=True)
        settings.alerts_file.write_text(
            subscribers
            + f"  - name: late-tg\n    telegram: {{bot_token: '6:LA', chat_id: 12, api_base: '{api}'}}\n"
            + "    match: {kinds: []}\n    brief: {every: weekly}\n"
        )
        # The new worker looks at the subscribers in order, so once the one added last has its brief, the
        # two before it were looked at too.
        eventually(
            lambda: receivers.of("telegram-document", "6:LA"), 180, "the added subscriber got no brief"
        )
        assert len(receivers.of("telegram-document", "5:KA")) == 1
        assert len(smtp.inbox.messages) == 1
    finally:
        settings.alerts_file.write_text("subscribers: []\n")
