"""Alert messages in Indonesian or English, escaped for each channel.

Everything a post contributes (its text, its url) is escaped for where it goes: HTML for e-mail and
Telegram (``parse_mode=HTML``), Slack's ``&``/``<``/``>`` rule for Slack, nothing for plain text and
WhatsApp (the Cloud API's text body is plain; its ``*``/``_`` markers are broken up so a post cannot
restyle the message).

Telegram and WhatsApp take at most 4,096 characters: a longer message keeps whole lines (each a complete
element, so no tag or entity is cut), drops trailing examples and then trailing alerts, and says how many
it left out.
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
CHAT_LIMIT = 4096
"""Telegram's and WhatsApp's most characters in one text message (Telegram: HTTP 400 above it)."""
URL_CHARS = 300
"""A post's url longer than this is left out of a message (the text stays): it would crowd out the rest."""

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
        "more_alert": "{n} peringatan lainnya",
        "more_alerts": "{n} peringatan lainnya",
        "more_example": "{n} contoh lainnya",
        "more_examples": "{n} contoh lainnya",
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
        "more_alert": "{n} more alert",
        "more_alerts": "{n} more alerts",
        "more_example": "{n} more example",
        "more_examples": "{n} more examples",
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
    title = f"{test}{status}{head} ({words[alert.severity.value]}){': ' + subject if subject else ''}"
    return " ".join(title.split())  # one line: it is the e-mail Subject header too


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


@dataclass(frozen=True)
class _Block:
    """One alert's lines: ``head`` (title, detail) and ``tail`` (the Kibana link) are kept whole;
    ``examples`` may be cut from the end to fit a chat message."""

    head: list[str]
    examples: list[str]
    tail: list[str]

    def lines(self, examples: int | None = None) -> list[str]:
        return [*self.head, *self.examples[:examples], *self.tail]


def _block(
    alert: Alert,
    lang: str,
    esc: Callable[[str], str],
    bold: Callable[[str], str],
    link: Callable[[str, str], str],
) -> _Block:
    words = WORDS[lang]
    examples = []
    for example in alert.examples:
        line = "• " + esc(example.text)
        if example.url and len(example.url) <= URL_CHARS:
            line += " " + esc(example.url)
        examples.append(line)
    tail = [link(alert.kibana_url, words["open"])] if alert.kibana_url else []
    return _Block([bold(esc(_title(alert, lang))), esc(_detail(alert, lang))], examples, tail)


def _units(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts (an emoji is two): never less than ``len``."""
    return len(text.encode("utf-16-le")) // 2


def _more(lang: str, alerts: int, examples: int) -> str:
    """The line that ends a cut message: ``… 2 peringatan lainnya, 1 contoh lainnya``."""
    words = WORDS[lang]
    counts = (("more_alert", alerts), ("more_example", examples))
    return "… " + ", ".join(words[key + ("" if n == 1 else "s")].format(n=n) for key, n in counts if n)


def _fit(head: list[str], blocks: list[_Block], sep: str, lang: str, limit: int) -> str:
    """The message within ``limit`` units: whole alerts while they fit, then as many of the next alert's
    examples as fit (its title, detail and link or nothing), then a line saying what was left out.
    Only whole lines go, so an HTML message keeps every tag closed and every entity whole."""
    para = sep + sep
    full = para.join(head + [sep.join(b.lines()) for b in blocks])
    if _units(full) <= limit:
        return full
    room = limit - _units(para + _more(lang, len(blocks), sum(len(b.examples) for b in blocks)))
    kept = list(head)
    used = _units(para.join(kept))
    left_out_examples = 0
    for block in blocks:
        for shown in range(len(block.examples), -1, -1):
            text = sep.join(block.lines(shown))
            cost = _units(text) + (_units(para) if kept else 0)
            if used + cost <= room:
                break
        else:
            break  # not even its title: this alert and the rest are left out
        kept.append(text)
        used += cost
        left_out_examples += len(block.examples) - shown
        if shown < len(block.examples):
            break
    left_out_alerts = len(blocks) - (len(kept) - len(head))
    return para.join([*kept, _more(lang, left_out_alerts, left_out_examples)])


def render(alerts: Sequence[Alert], lang: str = "id", digest: bool = False) -> Message:
    """One message for one alert or a group (a group's subject counts them); the Telegram and WhatsApp
    texts within ``CHAT_LIMIT`` (see ``_fit``)."""
    words = WORDS[lang]
    first = alerts[0]
    if len(alerts) == 1 and not digest:
        subject = _title(first, lang)
    else:
        label = words["digest"] if digest else "Pantau Banten"
        subject = f"{label}: {len(alerts)} {words['alerts']}"

    def plain_link(url: str, label: str) -> str:
        return f"{label}: {url}"

    def html_link(url: str, label: str) -> str:
        return f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'

    def parts_of(
        esc: Callable[[str], str], bold: Callable[[str], str], link: Callable[[str, str], str]
    ) -> tuple[list[str], list[_Block]]:
        head = [bold(esc(subject))] if len(alerts) > 1 or digest else []
        return head, [_block(a, lang, esc, bold, link) for a in alerts]

    def whole(parts: tuple[list[str], list[_Block]], sep: str) -> str:
        head, blocks = parts
        return (sep + sep).join(head + [sep.join(b.lines()) for b in blocks])

    def bold_html(s: str) -> str:
        return f"<b>{s}</b>"

    text = whole(parts_of(lambda s: s, lambda s: s, plain_link), "\n")
    html_body = whole(parts_of(html.escape, bold_html, html_link), "<br>\n")
    telegram = _fit(*parts_of(html.escape, bold_html, html_link), "\n", lang, CHAT_LIMIT)
    slack = whole(
        parts_of(_slack, lambda s: f"*{s}*", lambda url, label: f"<{_slack(url)}|{_slack(label)}>"), "\n"
    )
    whatsapp = _fit(*parts_of(_whatsapp_plain, lambda s: f"*{s}*", plain_link), "\n", lang, CHAT_LIMIT)
    page = f"<html><body><p>{html_body}</p></body></html>"
    return Message(subject=subject, text=text, html=page, telegram=telegram, slack=slack, whatsapp=whatsapp)
