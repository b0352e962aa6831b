"""Sending one notification through one channel: signed webhook, Telegram, WhatsApp, e-mail, Slack.

A send either returns (the receiver took it) or raises ``SendError`` saying whether trying again can help
(connection errors, timeouts, 408, 429 and 5xx can; any other refusal cannot). Anything else a channel
raises (a header the e-mail library refuses, a URL it cannot parse) is a ``SendError`` that cannot, so
the delivery logs it failed and dead-letters it instead of losing it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from email.message import EmailMessage

import httpx

from pipeline.alerts.render import Message, render
from schemas.alerts import Alert
from schemas.subscribers import EmailChannel, Subscriber, WebhookChannel

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


class SendError(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@contextlib.contextmanager
def failures_as_send_errors() -> Iterator[None]:
    """Any exception but ``SendError`` becomes one, not retryable: the same message fails the same way."""
    try:
        yield
    except SendError:
        raise
    except Exception as exc:
        raise SendError(f"{type(exc).__name__}: {exc}", retryable=False) from exc


def sign(secret_key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key, signed, hashlib.sha256).digest()).decode()


def webhook_request(
    channel: WebhookChannel, msg_id: str, alerts: Sequence[Alert], now: float | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers and body: the Alert JSON, or ``{"alerts": [...]}`` for a group."""
    payload: object = (
        alerts[0].model_dump(mode="json")
        if len(alerts) == 1
        else {"alerts": [a.model_dump(mode="json") for a in alerts]}
    )
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(now if now is not None else time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(channel.key(), msg_id, timestamp, body),
    }
    return headers, body


async def _post(client: httpx.AsyncClient, url: str, **kwargs: object) -> None:
    try:
        response = await client.post(url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise SendError(f"{type(exc).__name__}: {exc}", retryable=True) from None
    if response.status_code >= 300:
        reason = f"HTTP {response.status_code}: {response.text[:300]}"
        raise SendError(reason, retryable=response.status_code in RETRYABLE)


def smtp_send(url: str, sender: str | None, to: list[str], message: Message, timeout: float) -> None:
    """An alert message as a plain-text and an HTML part."""
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    send_mail(url, sender, to, mail, timeout)


def send_mail(url: str, sender: str | None, to: list[str], mail: EmailMessage, timeout: float) -> None:
    """SMTP with STARTTLS (``smtp://user:pass@host:587``) or implicit TLS (``smtps://``); sets From/To."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or (465 if parts.scheme == "smtps" else 587)
    user = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password else ""
    mail["From"] = sender or (user if user and "@" in user else f"pantau@{host}")
    mail["To"] = ", ".join(to)
    context = ssl.create_default_context()
    query = urllib.parse.parse_qs(parts.query)
    if "cafile" in query:
        context.load_verify_locations(cafile=query["cafile"][0])
    try:
        if parts.scheme == "smtps":
            with smtplib.SMTP_SSL(host, port, timeout=timeout, context=context) as smtp:
                if user:
                    smtp.login(user, password)
                smtp.send_message(mail)
        else:
            with smtplib.SMTP(host, port, timeout=timeout) as smtp:
                smtp.starttls(context=context)
                if user:
                    smtp.login(user, password)
                smtp.send_message(mail)
    except smtplib.SMTPResponseException as exc:
        raise SendError(
            f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
            retryable=exc.smtp_code >= 400 and exc.smtp_code < 500,
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}", retryable=True) from None


async def send(
    client: httpx.AsyncClient,
    subscriber: Subscriber,
    msg_id: str,
    alerts: Sequence[Alert],
    smtp_url: str | None,
    timeout: float,
    digest: bool = False,
) -> None:
    """One notification of ``alerts`` to ``subscriber``; raises ``SendError`` (only)."""
    with failures_as_send_errors():
        if subscriber.webhook is not None:
            headers, body = webhook_request(subscriber.webhook, msg_id, alerts)
            await _post(client, subscriber.webhook.url, content=body, headers=headers)
            return
        message = render(alerts, subscriber.lang, digest=digest)
        if subscriber.telegram is not None:
            tg = subscriber.telegram
            url = f"{tg.api_base.rstrip('/')}/bot{tg.bot_token}/sendMessage"
            payload = {
                "chat_id": tg.chat_id,
                "text": message.telegram,
                "parse_mode": "HTML",
                "disable_web_page_preview": True,
            }
            await _post(client, url, json=payload)
        elif subscriber.whatsapp is not None:
            wa = subscriber.whatsapp
            url = f"{wa.api_base.rstrip('/')}/{wa.phone_number_id}/messages"
            payload = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": wa.to,
                "type": "text",
                "text": {"preview_url": False, "body": message.whatsapp},
            }
            await _post(client, url, json=payload, headers={"authorization": f"Bearer {wa.access_token}"})
        elif subscriber.slack is not None:
            await _post(client, subscriber.slack.url, json={"text": message.slack})
        elif subscriber.email is not None:
            await _email(subscriber.email, message, smtp_url, timeout)


async def _email(channel: EmailChannel, message: Message, smtp_url: str | None, timeout: float) -> None:
    url = channel.smtp_url or smtp_url
    if not url:
        raise SendError("no smtp_url for this subscriber and PANTAU_SMTP_URL is not set", retryable=False)
    await asyncio.get_running_loop().run_in_executor(
        None, smtp_send, url, channel.sender, channel.to, message, timeout
    )
