"""The brief as one HTML file: inline SVG charts drawn here, inline CSS, no script, no external request.

Every string that comes from posts, topics or alerts goes through ``esc`` (text and attribute values); links
are kept only for http(s) URLs. A Content-Security-Policy without any script or network source backs this
up: even markup that slipped through could neither run nor fetch.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Literal

from pipeline.brief.data import SENTIMENTS, WIB, BriefData, Headline
from schemas.vocab import REGION_NAMES, Region

Lang = Literal["id", "en"]
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
SENTIMENT_COLOURS = {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}
TILES: dict[Region, tuple[int, int, str]] = {
    Region.KOTA_CILEGON: (0, 0, "Cilegon"),
    Region.KOTA_SERANG: (1, 0, "Kota Serang"),
    Region.KAB_TANGERANG: (2, 0, "Kab. Tangerang"),
    Region.KOTA_TANGERANG: (3, 0, "Kota Tangerang"),
    Region.KAB_PANDEGLANG: (0, 1, "Pandeglang"),
    Region.KAB_SERANG: (1, 1, "Kab. Serang"),
    Region.KAB_LEBAK: (2, 1, "Lebak"),
    Region.KOTA_TANGERANG_SELATAN: (3, 1, "Tangsel"),
}
"""Tile-grid map of the 8 kab/kota: west to east, coast (north) above the south; no geometry needed."""

TEXT: dict[str, dict[Lang, str]] = {
    "title": {"id": "Ringkasan mingguan Pantau Banten", "en": "Pantau Banten weekly brief"},
    "period": {"id": "Periode", "en": "Period"},
    "generated": {"id": "Dibuat", "en": "Generated"},
    "filter": {"id": "Filter", "en": "Filter"},
    "headline": {"id": "Angka utama", "en": "Headline numbers"},
    "posts": {"id": "Unggahan", "en": "Posts"},
    "negative": {"id": "Negatif", "en": "Negative"},
    "public": {"id": "Layanan publik", "en": "Public service"},
    "agencies": {"id": "Instansi disebut", "en": "Agencies named"},
    "prev": {"id": "periode sebelumnya", "en": "previous period"},
    "volume": {"id": "Volume per instansi", "en": "Volume by agency"},
    "sentiment": {"id": "Tren sentimen", "en": "Sentiment trend"},
    "catregion": {"id": "Kategori × wilayah (layanan publik)", "en": "Category × region (public service)"},
    "map": {"id": "Peta kab/kota (unggahan, % negatif)", "en": "Kab/kota map (posts, % negative)"},
    "topics": {"id": "Topik yang sedang naik", "en": "Emerging topics"},
    "alerts": {"id": "Peringatan periode ini", "en": "Alerts of the period"},
    "responses": {"id": "Tanggapan instansi", "en": "Agency responsiveness"},
    "engaged": {"id": "Keluhan paling ramai", "en": "Most-engaged negative posts"},
    "none": {"id": "Tidak ada data pada periode ini.", "en": "No data in this period."},
    "no_alerts_index": {
        "id": "Peringatan belum tersedia (indeks {index} belum ada).",
        "en": "Alerts are not available yet (no {index} index).",
    },
    "no_responses_index": {
        "id": "Data tanggapan instansi belum tersedia (indeks {index} belum ada).",
        "en": "Agency responsiveness is not available yet (no {index} index).",
    },
    "size": {"id": "unggahan", "en": "posts"},
    "growth": {"id": "pertumbuhan", "en": "growth"},
    "complaints": {"id": "keluhan", "en": "complaints"},
    "responded": {"id": "ditanggapi", "en": "answered"},
    "median_reply": {"id": "median tanggapan pertama", "en": "median first response"},
    "overdue": {"id": "lewat batas waktu", "en": "overdue"},
    "engagement": {"id": "interaksi", "en": "engagement"},
    "open": {"id": "buka", "en": "open"},
    "masked": {
        "id": "Data pribadi dalam unggahan sudah disamarkan ([NIK], [TELEPON], …).",
        "en": "Personal data in posts is masked ([NIK], [TELEPON], …).",
    },
    "negative_label": {"id": "negatif", "en": "negative"},
    "neutral_label": {"id": "netral", "en": "neutral"},
    "positive_label": {"id": "positif", "en": "positive"},
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
main{max-width:860px;margin:0 auto;padding:12px}
h1{font-size:1.4rem;margin:.4rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
section{background:#fff;border-radius:8px;padding:10px 12px;margin-bottom:12px;box-shadow:0 1px 2px #0001}
.meta{color:#555;font-size:.9rem}.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px}
.card{background:#fff;border-radius:8px;padding:10px;box-shadow:0 1px 2px #0001}
.card b{display:block;font-size:1.6rem}.up{color:#b71c1c}.down{color:#1b5e20}
.small{font-size:.8rem;color:#666}
svg{width:100%;height:auto;display:block}.legend span{display:inline-block;margin-right:10px;font-size:.8rem}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
table{border-collapse:collapse;width:100%;font-size:.85rem}
td,th{padding:4px;border-bottom:1px solid #eee;text-align:left}
.scroll{overflow-x:auto}
.post{border-left:3px solid #d62728;padding:4px 8px;margin:8px 0;overflow-wrap:anywhere}
blockquote{margin:4px 0 4px 8px;color:#444;font-size:.9rem;overflow-wrap:anywhere}
"""


CSP = "default-src 'none'; style-src 'unsafe-inline'"
"""No script, image, font or connection source at all: the page can neither run code nor fetch anything."""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _t(key: str, lang: Lang) -> str:
    return TEXT[key][lang]


def _when(moment: datetime) -> str:
    return moment.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB")


def _safe_url(url: str | None) -> str | None:
    return url if url and url.lower().startswith(("https://", "http://")) else None


def _delta(now: float, before: float) -> str:
    if before == 0:
        return "–" if now == 0 else "+"
    change = (now - before) / before * 100
    arrow, cls = ("▲", "up") if change > 0 else ("▼", "down") if change < 0 else ("=", "")
    return f'<span class="{cls}">{arrow} {abs(change):.0f} %</span>'


def _cards(current: Headline, previous: Headline, lang: Lang) -> str:
    rows = [
        ("posts", current.posts, previous.posts, ""),
        ("negative", current.negative, previous.negative, f" ({current.negative_share:.0%})"),
        ("public", current.public_service, previous.public_service, ""),
        ("agencies", current.agencies, previous.agencies, ""),
    ]
    out = []
    for key, now, before, extra in rows:
        out.append(
            f'<div class="card">{_t(key, lang)}<b>{now}{esc(extra)}</b>'
            f'{_delta(now, before)} <span class="small">{_t("prev", lang)}: {before}</span></div>'
        )
    return '<div class="cards">' + "".join(out) + "</div>"


def _legend(items: list[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{esc(n)}</span>' for n, c in items)
        + "</div>"
    )


def stacked_bars(
    days: list[str],
    series: dict[str, dict[str, int]],
    colours: dict[str, str],
    label: str,
    percent: bool = False,
) -> str:
    """Bars per day, one stacked segment per series; ``percent`` scales each day to 100 %."""
    width, height, left, bottom = 400, 200, 30, 24
    totals = {d: sum(s.get(d, 0) for s in series.values()) for d in days}
    top = 1.0 if percent else max([*totals.values(), 1])
    step = (width - left) / max(len(days), 1)
    bar = step * 0.7
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="0" y="12" font-size="12">{"100 %" if percent else top}</text>',
    ]
    for i, day in enumerate(days):
        x = left + i * step + (step - bar) / 2
        y = float(height - bottom)
        for name, values in series.items():
            value = values.get(day, 0)
            if not value:
                continue
            share = value / totals[day] if percent else value / top
            h = share * (height - bottom - 16)
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colours[name]}">'
                f"<title>{esc(name)} {esc(day)}: {value}</title></rect>"
            )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - 8}" font-size="12" text-anchor="middle">'
            f"{esc(day[5:])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts) + _legend([(n, colours[n]) for n in series])


def tile_map(counts: dict[str, tuple[int, int]], lang: Lang) -> str:
    """Eight tiles coloured by the share of negative posts, labelled with posts and that share."""
    size, gap = 100, 6
    parts = [
        f'<svg viewBox="0 0 {4 * (size + gap)} {2 * (size // 2 + gap)}" role="img" '
        f'aria-label="{esc(_t("map", lang))}">'
    ]
    for region, (col, row, name) in TILES.items():
        posts, negative = counts.get(region.value, (0, 0))
        share = negative / posts if posts else 0.0
        red = int(255 - 120 * share)
        fill = f"rgb(255,{red},{red})" if posts else "#eeeeee"
        x, y = col * (size + gap), row * (size // 2 + gap)
        parts.append(
            f'<rect x="{x}" y="{y}" width="{size}" height="{size // 2}" rx="6" fill="{fill}" stroke="#bbb">'
            f"<title>{esc(REGION_NAMES[region])}</title></rect>"
            f'<text x="{x + 6}" y="{y + 17}" font-size="12">{esc(name)}</text>'
            f'<text x="{x + 6}" y="{y + 42}" font-size="20" font-weight="bold">{posts}'
            f'<tspan font-size="11" font-weight="normal"> {share:.0%} '
            f"{_t('negative_label', lang)}</tspan></text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def heat_table(cells: dict[str, dict[str, int]]) -> str:
    categories = sorted({c for row in cells.values() for c in row})
    top = max([v for row in cells.values() for v in row.values()] or [1])
    head = "".join(f"<th>{esc(c)}</th>" for c in categories)
    rows = []
    for region in sorted(cells, key=lambda r: -sum(cells[r].values())):
        tds = []
        for category in categories:
            value = cells[region].get(category, 0)
            alpha = value / top
            tds.append(f'<td style="background:rgba(214,39,40,{alpha:.2f})">{value or ""}</td>')
        rows.append(f"<tr><th>{esc(region)}</th>{''.join(tds)}</tr>")
    return f'<div class="scroll"><table><tr><th></th>{head}</tr>{"".join(rows)}</table></div>'


def render(data: BriefData, lang: Lang = "id", generated_at: datetime | None = None) -> str:
    generated = generated_at or datetime.now(WIB)
    days = data.period.days()
    scope = " · ".join(
        esc(x)
        for x in ([data.agency] if data.agency else []) + ([_region_name(data.region)] if data.region else [])
    )
    body = [
        f"<h1>{_t('title', lang)}</h1>",
        f'<p class="meta">{_t("period", lang)}: {_when(data.period.start)} – {_when(data.period.end)}'
        + (f" · {_t('filter', lang)}: {scope}" if scope else "")
        + f" · {_t('generated', lang)} {_when(generated)}</p>",
        f"<h2>{_t('headline', lang)}</h2>",
        _cards(data.current, data.previous, lang),
    ]
    colours = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(data.volume_by_agency)}
    body.append(
        _section(
            "volume",
            lang,
            stacked_bars(days, data.volume_by_agency, colours, _t("volume", lang))
            if data.volume_by_agency
            else None,
        )
    )
    sentiment = {
        _t(f"{s}_label", lang): {d: data.sentiment_by_day.get(d, {}).get(s, 0) for d in days}
        for s in SENTIMENTS
    }
    scolours = {_t(f"{s}_label", lang): SENTIMENT_COLOURS[s] for s in SENTIMENTS}
    body.append(
        _section(
            "sentiment",
            lang,
            stacked_bars(days, sentiment, scolours, _t("sentiment", lang), percent=True)
            if data.sentiment_by_day
            else None,
        )
    )
    body.append(
        _section("catregion", lang, heat_table(data.category_region) if data.category_region else None)
    )
    body.append(_section("map", lang, tile_map(data.region_counts, lang)))
    body.append(_section("topics", lang, _topics(data, lang) if data.topics else None))
    if data.alerts is None:
        body.append(
            _section(
                "alerts", lang, f"<p>{esc(_t('no_alerts_index', lang).format(index=data.indices.alerts))}</p>"
            )
        )
    else:
        body.append(_section("alerts", lang, _alerts(data, lang) if data.alerts else None))
    if data.responsiveness is None:
        body.append(
            _section(
                "responses",
                lang,
                f"<p>{esc(_t('no_responses_index', lang).format(index=data.indices.responses))}</p>",
            )
        )
    else:
        body.append(_section("responses", lang, _responses(data, lang) if data.responsiveness else None))
    body.append(_section("engaged", lang, _engaged(data, lang) if data.engaged_negative else None))
    body.append(f'<p class="small">{_t("masked", lang)}</p>')
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_t('title', lang)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


def _region_name(code: str | None) -> str:
    if code is None:
        return ""
    try:
        return REGION_NAMES[Region(code)]
    except ValueError:
        return str(code)


def _section(key: str, lang: Lang, content: str | None) -> str:
    inner = content or f"<p>{_t('none', lang)}</p>"
    return f'<section id="{key}"><h2>{_t(key, lang)}</h2>{inner}</section>'


def _topics(data: BriefData, lang: Lang) -> str:
    items = []
    for topic in data.topics:
        examples = "".join(f"<blockquote>{esc(text)}</blockquote>" for text in topic.examples)
        items.append(
            f"<li><b>{esc(topic.label)}</b> · {topic.size} {_t('size', lang)} · {_t('growth', lang)} "
            f"{topic.growth:.1f}× · {esc(', '.join(topic.agencies))}{examples}</li>"
        )
    return f"<ol>{''.join(items)}</ol>"


def _alerts(data: BriefData, lang: Lang) -> str:
    rows = []
    for alert in data.alerts or []:
        link = _safe_url(alert.kibana_url)
        open_ = f' <a href="{esc(link)}" rel="noopener noreferrer">{_t("open", lang)}</a>' if link else ""
        rows.append(
            f"<tr><td>{_when(alert.raised_at)}</td><td>{esc(alert.severity)}</td><td>{esc(alert.kind)}</td>"
            f"<td>{esc(', '.join(alert.agencies))}</td><td>{esc(alert.summary)}{open_}</td></tr>"
        )
    return f'<div class="scroll"><table>{"".join(rows)}</table></div>'


def _duration(seconds: float | None, lang: Lang) -> str:
    """``1 h 2 j 5 m`` (hari, jam, menit) or ``1 d 2 h 5 m``; a dash when nothing was answered."""
    if seconds is None:
        return "–"
    units = ("h", "j", "m") if lang == "id" else ("d", "h", "m")
    days, rest = divmod(round(seconds / 60), 24 * 60)
    parts = [(days, units[0]), (rest // 60, units[1]), (rest % 60, units[2])]
    return " ".join(f"{n} {unit}" for n, unit in parts if n) or f"0 {units[2]}"


def _responses(data: BriefData, lang: Lang) -> str:
    """The rows of `pantau responsiveness`: complaints, answered (share), median first response, overdue."""
    rows = "".join(
        f"<tr><td>{esc(r.agency)}</td><td>{r.complaints} {_t('complaints', lang)}</td>"
        f"<td>{r.responded} {_t('responded', lang)} ({r.reply_rate:.0%})</td>"
        f"<td>{_t('median_reply', lang)} {_duration(r.median_first_response_s, lang)}</td>"
        f"<td>{r.overdue} {_t('overdue', lang)}</td></tr>"
        for r in data.responsiveness or []
        if r.complaints
    )
    return f'<div class="scroll"><table>{rows}</table></div>'


def _engaged(data: BriefData, lang: Lang) -> str:
    out = []
    for post in data.engaged_negative:
        link = _safe_url(post.url)
        meta = " · ".join(
            esc(x)
            for x in [
                _when(post.created_at),
                post.platform,
                post.author or "",
                ", ".join(post.agencies),
                post.region_name or "",
            ]
            if x
        )
        anchor = f' · <a href="{esc(link)}" rel="noopener noreferrer">{_t("open", lang)}</a>' if link else ""
        out.append(
            f'<div class="post"><div>{esc(post.text)}</div><div class="small">{meta} · '
            f"{post.engagement} {_t('engagement', lang)}{anchor}</div></div>"
        )
    return "".join(out)
