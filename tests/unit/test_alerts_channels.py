"""Each channel against a loopback stand-in speaking its wire format: a signed webhook the receiver
verifies, Telegram ``sendMessage`` with HTML escaping, WhatsApp Cloud ``messages``, Slack, and e-mail over
SMTP with STARTTLS on a test certificate (plain-text and HTML parts)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from pipeline.alerts.channels import SendError, send, sign, webhook_request
from pipeline.alerts.render import CHAT_LIMIT, render
from pipeline.alerts.store import message_id
from pipeline.alerts.subscribers import parse_subscribers
from schemas.alerts import Alert, AlertExample, AlertKind, AlertStatus, Severity
from schemas.posts import TopicRef
from schemas.subscribers import Subscriber, WebhookChannel
from schemas.vocab import Agency, Region
from tests.alert_receivers import SECRET, Receivers, SmtpServer, verify

HOSTILE = 'Banjir <script>alert(1)</script> & "air" *naik* _deras_ <b>tolong</b>'


def _alert(**kw: object) -> Alert:
    fields: dict[str, object] = {
        "id": "al_1",
        "key": "emergency:region=3602",
        "kind": AlertKind.EMERGENCY,
        "severity": Severity.CRITICAL,
        "agencies": [Agency.BPBD],
        "region": Region.KAB_LEBAK,
        "window_start": datetime(2026, 12, 1, tzinfo=UTC),
        "window_end": datetime(2026, 12, 1, 0, 20, tzinfo=UTC),
        "count": 3,
        "expected": 0,
        "summary": "Laporan darurat bencana di Kab. Lebak: 3 unggahan sejak 07:00 WIB.",
        "examples": [AlertExample(key="x:1", text=HOSTILE, url="https://x.com/a/status/1?a=1&b=<2>")],
        "kibana_url": "http://kibana:5601/app/discover#/?_g=(time:(from:'a',to:'b'))",
        "raised_at": datetime(2026, 12, 1, tzinfo=UTC),
    }
    fields.update(kw)
    return Alert.model_validate(fields)


def _subscriber(yaml_text: str) -> Subscriber:
    return parse_subscribers("subscribers:\n" + yaml_text, env={}).subscribers[0]


def _send(subscriber: Subscriber, alerts: list[Alert], smtp_url: str | None = None) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            msg_id = message_id(subscriber.name, alerts[0].id, alerts[0].revision)
            await send(client, subscriber, msg_id, alerts, smtp_url, 5.0)

    asyncio.run(go())


def test_webhook_signature_follows_standard_webhooks() -> None:
    # the Standard Webhooks reference vector (svix libraries' tests)
    key = WebhookChannel(url="https://x", secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").key()
    body = b'{"test": 2432232314}'
    assert sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    headers, payload = webhook_request(WebhookChannel(url="https://x", secret=SECRET), "msg_1", [_alert()])
    assert verify(SECRET, headers, payload)
    assert not verify(SECRET, headers, payload + b" ")


def test_webhook_is_verified_by_the_receiver_and_its_id_is_stable_per_revision(receivers: Receivers) -> None:
    sub = _subscriber(f"  - name: ops\n    webhook: {{url: '{receivers.url}/hook/ops', secret: {SECRET}}}\n")
    _send(sub, [_alert()])
    _send(sub, [_alert()])
    _send(sub, [_alert(revision=2, status=AlertStatus.RESOLVED)])
    got = receivers.of("webhook", "ops")
    assert len(got) == 3 and all(r.verified for r in got)
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"] != got[2].headers["webhook-id"]
    assert got[0].json()["key"] == "emergency:region=3602" and got[2].json()["status"] == "resolved"
    receivers.status["down"] = 500
    broken = _subscriber(
        f"  - name: down\n    webhook: {{url: '{receivers.url}/hook/down', secret: {SECRET}}}\n"
    )
    with pytest.raises(SendError) as caught:
        _send(broken, [_alert()])
    assert caught.value.retryable and "500" in caught.value.reason


def test_a_group_is_one_message_with_every_alert(receivers: Receivers) -> None:
    sub = _subscriber(f"  - name: grp\n    webhook: {{url: '{receivers.url}/hook/grp', secret: {SECRET}}}\n")
    _send(sub, [_alert(), _alert(id="al_2", key="spike:agency=pdam", kind=AlertKind.SPIKE)])
    (got,) = receivers.of("webhook", "grp")
    assert [a["id"] for a in got.json()["alerts"]] == ["al_1", "al_2"]


def test_telegram_whatsapp_and_slack_stand_ins_take_escaped_messages(receivers: Receivers) -> None:
    tg = _subscriber(
        f"  - name: tg\n    telegram: {{bot_token: '1:AA', chat_id: -1001, api_base: '{receivers.url}'}}\n"
    )
    _send(tg, [_alert()])
    (message,) = receivers.of("telegram")
    assert message.verified, message.body  # no tag from the post's text survived
    text = message.json()["text"]
    assert "&lt;script&gt;" in text and "<b>" in text and message.json()["parse_mode"] == "HTML"

    wa = _subscriber(
        "  - name: wa\n    whatsapp: {access_token: t0k, phone_number_id: '123', to: '628123', "
        f"api_base: '{receivers.url}/wa'}}\n"
    )
    _send(wa, [_alert()])
    (message,) = receivers.of("whatsapp")
    assert message.verified and "Kab. Lebak" in message.json()["text"]["body"]
    assert "*naik*" not in message.json()["text"]["body"]  # a post cannot restyle the message

    slack = _subscriber(f"  - name: sl\n    slack: {{url: '{receivers.url}/slack/sl'}}\n")
    _send(slack, [_alert()])
    (message,) = receivers.of("slack")
    assert "&lt;script&gt;" in message.json()["text"] and "<http://kibana" in message.json()["text"]


def test_email_goes_through_starttls_with_plain_and_html_parts(tmp_path: Path) -> None:
    server = SmtpServer(tmp_path).start()
    try:
        sub = _subscriber("  - name: mail\n    email: {to: ops@bpbd.bantenprov.go.id}\n    lang: en\n")
        _send(sub, [_alert()], smtp_url=server.url)
        (mail,) = server.inbox.messages
        assert mail["To"] == "ops@bpbd.bantenprov.go.id" and "EMERGENCY" in mail["Subject"]
        parts = {
            p.get_content_type(): p.get_payload(decode=True).decode()
            for p in mail.walk()
            if not p.is_multipart()
        }
        assert set(parts) == {"text/plain", "text/html"}
        assert HOSTILE in parts["text/plain"]
        assert "<script>" not in parts["text/html"] and "&lt;script&gt;" in parts["text/html"]
        nobody = _subscriber("  - name: m2\n    email: {to: a@b.c}\n")
        with pytest.raises(SendError) as caught:
            _send(nobody, [_alert()])
        assert not caught.value.retryable
    finally:
        server.stop()


def test_templates_in_both_languages_and_test_alerts_are_marked() -> None:
    indonesian = render([_alert()], "id")
    english = render([_alert()], "en")
    assert "DARURAT" in indonesian.subject and "kritis" in indonesian.subject
    assert "EMERGENCY" in english.subject and "critical" in english.subject
    assert "UJI COBA" in render([_alert(test=True)], "id").subject
    assert "Ringkasan" in render([_alert(), _alert(id="al_2")], "id", digest=True).subject


class _TelegramHtml(HTMLParser):
    """Telegram's HTML as its parser takes it: every tag closed in order, every ``&`` a whole entity."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.bad.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data or "&" in data:
            self.bad.append(data)


def _valid_telegram_html(text: str) -> bool:
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    cut_entity = re.search(r"&(?![a-z]+;|#\d+;|#x[0-9a-f]+;)", text, re.IGNORECASE)
    return not parser.open and not parser.bad and cut_entity is None


def _ordinary(n: int) -> Alert:
    example = AlertExample(key=f"x:{n}", text='Air PDAM mati "lagi" & <keruh> ' * 9, url="https://x.id/p/1")
    return _alert(id=f"al_{n}", examples=[example] * 3)


def test_a_digest_of_five_alerts_fits_telegram_and_whatsapp_and_says_what_it_left_out() -> None:
    full = render([_ordinary(n) for n in range(5)], "id", digest=True)
    assert len(full.text) > CHAT_LIMIT  # what e-mail and Slack get is whole
    for message in (full.telegram, full.whatsapp):
        assert len(message) <= CHAT_LIMIT and len(message.encode("utf-16-le")) // 2 <= CHAT_LIMIT
        assert message.endswith("lainnya") and "\n\n… " in message
    assert _valid_telegram_html(full.telegram), full.telegram
    assert full.telegram.startswith("<b>Ringkasan peringatan: 5 peringatan</b>")
    english = render([_ordinary(n) for n in range(5)], "en", digest=True).telegram
    assert re.search(r"… \d+ more (alerts?|examples?)", english) and _valid_telegram_html(english)
    small = render([_ordinary(1)], "id")
    assert "…" not in small.telegram and small.telegram.count("•") == 3  # a short one is untouched


def test_a_4_kb_url_is_left_out_and_the_telegram_text_stays_within_the_limit(receivers: Receivers) -> None:
    long_url = "https://x.id/" + "q&<" * 1400
    alert = _alert(examples=[AlertExample(key="x:1", text=HOSTILE, url=long_url)] * 3)
    message = render([alert], "id")
    assert len(message.telegram) <= CHAT_LIMIT and "qqq" not in message.telegram
    assert message.telegram.count("• ") == 3 and _valid_telegram_html(message.telegram)
    tg = _subscriber(
        f"  - name: tg\n    telegram: {{bot_token: '7:LONG', chat_id: -1001, api_base: '{receivers.url}'}}\n"
    )
    _send(tg, [alert] + [_ordinary(n) for n in range(9)])
    (sent,) = receivers.of("telegram", "7:LONG")
    assert sent.verified and len(sent.json()["text"]) <= CHAT_LIMIT


def test_a_subject_is_one_line_even_when_a_topic_label_is_not() -> None:
    alert = _alert(topic=TopicRef(id="t1", label="banjir\nBcc: x@y"))
    assert "\n" not in render([alert], "en").subject


def test_an_unexpected_error_in_a_channel_is_a_send_error_that_is_not_retried() -> None:
    sub = _subscriber("  - name: mail\n    email: {to: ops@bpbd.bantenprov.go.id}\n")
    with pytest.raises(SendError) as caught:  # PANTAU_SMTP_URL is not checked by the subscribers file
        _send(sub, [_alert()], smtp_url="smtp://localhost:99999")
    assert not caught.value.retryable and "ValueError" in caught.value.reason
