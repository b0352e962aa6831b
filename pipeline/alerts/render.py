"""Alert messages in Indonesian or English, escaped for each channel.

Everything a post contributes (its text, its url) is escaped for where it goes: HTML for e-mail and
Telegram (``parse_mode=HTML``), Slack's ``&``/``<``/``>`` rule for Slack, nothing for plain text and
WhatsApp (the Cloud API's text body is plain; its ``*``/``_`` markers are broken up so a post cannot
restyle the message).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.alerts import Alert, AlertKind, AlertStatus
from schemas.vocab import REGION_NAMES

JAKARTA = ZoneInfo("Asia/Jakarta")

HEADLINES = {
    "id": {
        AlertKind.SPIKE: "Lonjakan unggahan",
        AlertKind.NEGATIVE_SURGE: "Sentimen negatif meningkat",
        AlertKind.EMERGENCY: "DARURAT",
        AlertKind.EMERGING_TOPIC: "Topik baru berkembang",
        AlertKind.SILENCE: "Aliran data berhenti",
        AlertKind.OVERDUE_RESPONSE: "Keluhan belum ditanggapi",
    },
    "en": {
        AlertKind.SPIKE: "Post spike",
        AlertKind.NEGATIVE_SURGE: "Negative sentiment surge",
        AlertKind.EMERGENCY: "EMERGENCY",
        AlertKind.EMERGING_TOPIC: "Emerging topic",
        AlertKind.SILENCE: "Stream silent",
        AlertKind.OVERDUE_RESPONSE: "Overdue complaints",
    },
}
WORDS = {
    "id": {
        "info": "info",
        "warning": "peringatan",
        "critical": "kritis",
        "resolved": "SELESAI",
        "test": "UJI COBA — bukan peringatan sungguhan",
        "posts": "unggahan",
        "expected": "biasanya",
        "open": "Buka di Kibana",
        "alerts": "peringatan",
        "digest": "Ringkasan peringatan",
    },
    "en": {
        "info": "info",
        "warning": "warning",
        "critical": "critical",
        "resolved": "RESOLVED",
        "test": "TEST — not a real alert",
        "posts": "posts",
        "expected": "expected",
        "open": "Open in Kibana",
        "alerts": "alerts",
        "digest": "Alert digest",
    },
}


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str
    telegram: str
    slack: str
    whatsapp: str


def _when(at: datetime) -> str:
    return at.astimezone(JAKARTA).strftime("%d-%m %H:%M")


def _title(alert: Alert, lang: str) -> str:
    words = WORDS[lang]
    head = HEADLINES[lang][alert.kind]
    status = f"[{words['resolved']}] " if alert.status == AlertStatus.RESOLVED else ""
    test = f"[{words['test']}] " if alert.test else ""
    where = []
    if alert.agencies:
        where.append("/".join(a.value.upper() for a in alert.agencies))
    if alert.region is not None:
        where.append(REGION_NAMES.get(alert.region, alert.region.value))
    if alert.topic is not None:
        where.append(f'"{alert.topic.label}"')
    subject = " · ".join(where)
    return f"{test}{status}{head} ({words[alert.severity.value]}){': ' + subject if subject else ''}"


def _detail(alert: Alert, lang: str) -> str:
    if lang == "id":
        return alert.summary
    window = f"{_when(alert.window_start)}–{_when(alert.window_end)} WIB"
    if alert.kind == AlertKind.SILENCE:
        return f"No posts arrived since {_when(alert.window_start)} WIB."
    if alert.kind == AlertKind.OVERDUE_RESPONSE:
        return (
            f"{alert.count} complaints are still unanswered past the response deadline "
            f"({_when(alert.window_end)} WIB); the oldest:"
        )
    return f"{alert.count} posts ({alert.expected:.1f} expected), {window}."


def _whatsapp_plain(text: str) -> str:
    """WhatsApp styles *bold*, _italic_, ~strike~ and ```code```: a zero-width joiner breaks each marker."""
    for mark in "*_~`":
        text = text.replace(mark, mark + "\u2060")
    return text


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _block(
    alert: Alert,
    lang: str,
    esc: Callable[[str], str],
    bold: Callable[[str], str],
    link: Callable[[str, str], str],
) -> list[str]:
    words = WORDS[lang]
    lines = [bold(esc(_title(alert, lang))), esc(_detail(alert, lang))]
    for example in alert.examples:
        line = "• " + esc(example.text)
        if example.url:
            line += " " + esc(example.url)
        lines.append(line)
    if alert.kibana_url:
        lines.append(link(alert.kibana_url, words["open"]))
    return lines


def render(alerts: Sequence[Alert], lang: str = "id", digest: bool = False) -> Message:
    """One message for one alert or a group (a group's subject counts them)."""
    words = WORDS[lang]
    first = alerts[0]
    if len(alerts) == 1 and not digest:
        subject = _title(first, lang)
    else:
        label = words["digest"] if digest else "Pantau Banten"
        subject = f"{label}: {len(alerts)} {words['alerts']}"

    def plain_link(url: str, label: str) -> str:
        return f"{label}: {url}"

    def text_of(
        esc: Callable[[str], str], bold: Callable[[str], str], link: Callable[[str, str], str], sep: str
    ) -> str:
        blocks = [sep.join(_block(a, lang, esc, bold, link)) for a in alerts]
        head = [bold(esc(subject))] if len(alerts) > 1 or digest else []
        return (sep + sep).join(head + blocks)

    text = text_of(lambda s: s, lambda s: s, plain_link, "\n")
    html_body = text_of(
        html.escape,
        lambda s: f"<b>{s}</b>",
        lambda url, label: f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>',
        "<br>\n",
    )
    telegram = text_of(
        html.escape,
        lambda s: f"<b>{s}</b>",
        lambda url, label: f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>',
        "\n",
    )
    slack = text_of(_slack, lambda s: f"*{s}*", lambda url, label: f"<{_slack(url)}|{_slack(label)}>", "\n")
    whatsapp = text_of(_whatsapp_plain, lambda s: f"*{s}*", plain_link, "\n")
    page = f"<html><body><p>{html_body}</p></body></html>"
    return Message(subject=subject, text=text, html=page, telegram=telegram, slack=slack, whatsapp=whatsapp)
