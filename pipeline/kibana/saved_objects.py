"""The saved objects Pantau ships for Kibana 8.15: data views, saved searches and two dashboards.

Built here and written to ``deploy/kibana/pantau-saved-objects.ndjson`` (``pantau kibana export``); a unit
test keeps the committed file equal to this output, so the two never drift.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.kibana.lens import Column, LensPanel, count, histogram, stable_id, terms

POSTS, TOPICS, ALERTS, RESPONSES = "pantau-posts", "pantau-topics", "pantau-alerts", "pantau-responses"
WAITING = {ALERTS: "issue 17 (alerts)", RESPONSES: "issue 20 (responsiveness)"}
"""Data views whose index another issue creates; their panels stay empty until the index exists."""

DATA_VIEWS: dict[str, tuple[str, str]] = {
    POSTS: ("Pantau Banten posts", "@timestamp"),
    TOPICS: ("Pantau Banten emerging topics", "last_seen"),
    ALERTS: ("Pantau Banten alerts", "raised_at"),
    RESPONSES: ("Pantau Banten agency responses", "created_at"),
}
CITIZENS = "not official_account:*"
"""Posts by agencies' official accounts are never counted as volume, sentiment or complaints (the contract's
``official_account`` is set on those and missing on every other post)."""


def citizens(kql: str = "") -> str:
    """A posts panel's KQL, restricted to posts not written by an official account."""
    return f"{kql} and {CITIZENS}" if kql else CITIZENS


NEGATIVE_PUBLIC = citizens("sentiment.label:negative and is_public_service:true")


def _latest_negative(key: str, grid: tuple[int, int, int, int]) -> LensPanel:
    return LensPanel(
        key=key,
        title="Keluhan negatif layanan publik terbaru",
        question="Apa keluhan negatif terbaru tentang layanan publik, dan instansi mana yang disebut?",
        data_view=POSTS,
        visualization="lnsDatatable",
        kql=NEGATIVE_PUBLIC,
        columns=(
            terms("text", "text.raw", "Teks (disamarkan)", 20, order_by="latest"),
            terms("agency", "agencies", "Instansi", 3, order_by="latest"),
            Column("latest", "max", "@timestamp", "Waktu", "date"),
            count(),
        ),
        grid=grid,
    )


OVERVIEW_PANELS: tuple[LensPanel, ...] = (
    LensPanel(
        key="volume-by-agency",
        title="Volume unggahan per instansi",
        question="Instansi mana yang paling banyak dibicarakan, dan kapan volumenya naik?",
        data_view=POSTS,
        kql=CITIZENS,
        visualization="lnsXY",
        columns=(
            histogram("day", "@timestamp", "Hari"),
            terms("agency", "agencies", "Instansi", 8, order_by="count"),
            count(),
        ),
        grid=(0, 0, 24, 14),
    ),
    LensPanel(
        key="sentiment-share",
        title="Porsi sentimen dari waktu ke waktu",
        question="Apakah percakapan makin negatif atau membaik?",
        data_view=POSTS,
        kql=CITIZENS,
        visualization="lnsXY",
        series="bar_percentage_stacked",
        columns=(
            histogram("day", "@timestamp", "Hari"),
            terms("sentiment", "sentiment.label", "Sentimen", 3, order_by="count"),
            count(),
        ),
        grid=(24, 0, 24, 14),
    ),
    LensPanel(
        key="category-region",
        title="Kategori × wilayah",
        question="Layanan apa yang dikeluhkan di kabupaten/kota mana?",
        data_view=POSTS,
        visualization="lnsHeatmap",
        kql=citizens("is_public_service:true"),
        columns=(
            terms("region", "region_name", "Wilayah", 9, order_by="count"),
            terms("category", "category", "Kategori", 12, order_by="count"),
            count(),
        ),
        grid=(0, 14, 24, 16),
    ),
    LensPanel(
        key="negative-by-agency",
        title="Instansi dengan unggahan negatif terbanyak",
        question="Instansi mana yang paling banyak menerima keluhan?",
        data_view=POSTS,
        visualization="lnsXY",
        series="bar_horizontal",
        kql=citizens("sentiment.label:negative"),
        columns=(terms("agency", "agencies", "Instansi", 10, order_by="count"), count()),
        grid=(24, 14, 24, 16),
    ),
    LensPanel(
        key="platform-mix",
        title="Sebaran platform",
        question="Di platform mana warga bersuara?",
        data_view=POSTS,
        kql=CITIZENS,
        visualization="lnsPie",
        columns=(terms("platform", "platform", "Platform", 7, order_by="count"), count()),
        grid=(0, 30, 16, 14),
    ),
    LensPanel(
        key="emerging-topics",
        title="Topik yang sedang naik",
        question="Cerita apa yang sedang tumbuh, seberapa besar, dan kapan terakhir terlihat?",
        data_view=TOPICS,
        visualization="lnsDatatable",
        columns=(
            terms("label", "label", "Topik", 15, order_by="growth"),
            Column("growth", "max", "growth", "Pertumbuhan"),
            Column("size", "max", "size", "Unggahan"),
            Column("last_seen", "max", "last_seen", "Terakhir terlihat", "date"),
        ),
        grid=(16, 30, 32, 14),
    ),
    LensPanel(
        key="alerts-timeline",
        title="Linimasa peringatan",
        question="Kapan peringatan muncul, dan jenis apa?",
        data_view=ALERTS,
        visualization="lnsXY",
        columns=(
            histogram("hour", "raised_at", "Waktu", interval="1h"),
            terms("kind", "kind", "Jenis", 5, order_by="count"),
            count(),
        ),
        grid=(0, 44, 24, 14),
    ),
    LensPanel(
        key="response-time",
        title="Median waktu tanggapan pertama per instansi",
        question="Seberapa cepat tiap instansi menanggapi keluhan (median, detik)?",
        data_view=RESPONSES,
        visualization="lnsXY",
        series="bar_horizontal",
        columns=(
            terms("agency", "agency", "Instansi", 10, order_by="median"),
            Column("median", "median", "first_response_s", "Median detik"),
        ),
        grid=(24, 44, 24, 14),
    ),
    _latest_negative("latest-negative", (0, 58, 48, 18)),
)

AGENCY_PANELS: tuple[LensPanel, ...] = (
    LensPanel(
        key="agency-volume-sentiment",
        title="Volume dan sentimen",
        question="Berapa banyak unggahan tentang instansi ini tiap hari, dan seberapa negatif?",
        data_view=POSTS,
        kql=CITIZENS,
        visualization="lnsXY",
        columns=(
            histogram("day", "@timestamp", "Hari"),
            terms("sentiment", "sentiment.label", "Sentimen", 3, order_by="count"),
            count(),
        ),
        grid=(0, 0, 32, 14),
    ),
    LensPanel(
        key="agency-categories",
        title="Kategori layanan",
        question="Layanan apa dari instansi ini yang dibicarakan?",
        data_view=POSTS,
        kql=CITIZENS,
        visualization="lnsPie",
        columns=(terms("category", "category", "Kategori", 8, order_by="count"), count()),
        grid=(32, 0, 16, 14),
    ),
    LensPanel(
        key="agency-regions",
        title="Wilayah",
        question="Di kabupaten/kota mana keluhan tentang instansi ini muncul?",
        data_view=POSTS,
        visualization="lnsXY",
        series="bar_horizontal",
        kql=citizens("sentiment.label:negative"),
        columns=(terms("region", "region_name", "Wilayah", 9, order_by="count"), count()),
        grid=(0, 14, 24, 14),
    ),
    LensPanel(
        key="agency-topics",
        title="Topik",
        question="Cerita apa yang menyangkut instansi ini?",
        data_view=POSTS,
        kql=CITIZENS,
        visualization="lnsDatatable",
        columns=(terms("topic", "topic.label", "Topik", 10, order_by="count"), count()),
        grid=(24, 14, 24, 14),
    ),
    LensPanel(
        key="agency-alerts",
        title="Peringatan untuk instansi ini",
        question="Peringatan apa yang dibunyikan untuk instansi ini, dan seberapa parah?",
        data_view=ALERTS,
        visualization="lnsXY",
        columns=(
            histogram("day", "raised_at", "Hari"),
            terms("severity", "severity", "Tingkat", 3, order_by="count"),
            count(),
        ),
        grid=(0, 28, 24, 14),
    ),
    LensPanel(
        key="agency-response-status",
        title="Status tanggapan keluhan",
        question="Berapa keluhan yang dijawab tepat waktu, terlambat, atau belum dijawab?",
        data_view=RESPONSES,
        visualization="lnsPie",
        columns=(terms("status", "status", "Status", 4, order_by="count"), count()),
        grid=(24, 28, 24, 14),
    ),
    _latest_negative("agency-latest-negative", (0, 42, 48, 18)),
)

AGENCY_CONTROL = stable_id("pantau-agency", "control", "agencies")


def data_view(title: str) -> dict[str, Any]:
    name, time_field = DATA_VIEWS[title]
    return {
        "type": "index-pattern",
        "id": title,
        "attributes": {"title": title, "name": name, "timeFieldName": time_field},
        "references": [],
        "coreMigrationVersion": "8.8.0",
        "typeMigrationVersion": "8.0.0",
    }


def saved_search(id_: str, title: str, description: str, columns: list[str], kql: str) -> dict[str, Any]:
    source = {
        "query": {"query": kql, "language": "kuery"},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    }
    return {
        "type": "search",
        "id": id_,
        "attributes": {
            "title": title,
            "description": description,
            "columns": columns,
            "sort": [["@timestamp", "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source, separators=(",", ":"))},
        },
        "references": [
            {"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": POSTS}
        ],
        "coreMigrationVersion": "8.8.0",
        "typeMigrationVersion": "10.2.0",
    }


def dashboard(
    id_: str, title: str, description: str, panels: tuple[LensPanel, ...], control: bool = False
) -> dict[str, Any]:
    """Lens panels by value; their data views are referenced twice, inside each panel and on the dashboard
    as ``<panelIndex>:indexpattern-datasource-layer-<layer id>``, as Kibana's exports do."""
    references = [{**ref, "name": f"{p.key}:{ref['name']}"} for p in panels for ref in p.references()]
    attributes: dict[str, Any] = {
        "title": title,
        "description": description,
        "panelsJSON": json.dumps([p.panel() for p in panels], ensure_ascii=False, separators=(",", ":")),
        "optionsJSON": json.dumps(
            {
                "useMargins": True,
                "syncColors": False,
                "syncCursor": True,
                "syncTooltips": False,
                "hidePanelTitles": False,
            },
            separators=(",", ":"),
        ),
        "timeRestore": True,
        "timeFrom": "now-7d",
        "timeTo": "now",
        "refreshInterval": {"pause": True, "value": 60000},
        "version": 1,
        "kibanaSavedObjectMeta": {
            "searchSourceJSON": json.dumps({"query": {"language": "kuery", "query": ""}, "filter": []})
        },
    }
    if control:
        controls = {
            AGENCY_CONTROL: {
                "order": 0,
                "width": "medium",
                "grow": True,
                "type": "optionsListControl",
                "explicitInput": {
                    "id": AGENCY_CONTROL,
                    "title": "Instansi",
                    "fieldName": "agencies",
                    "singleSelect": True,
                    "enhancements": {},
                },
            }
        }
        attributes["controlGroupInput"] = {
            "controlStyle": "oneLine",
            "chainingSystem": "HIERARCHICAL",
            "panelsJSON": json.dumps(controls, separators=(",", ":")),
            "ignoreParentSettingsJSON": json.dumps(
                {
                    "ignoreFilters": False,
                    "ignoreQuery": False,
                    "ignoreTimerange": False,
                    "ignoreValidations": False,
                },
                separators=(",", ":"),
            ),
        }
        references.append(
            {
                "name": f"controlGroup_{AGENCY_CONTROL}:optionsListDataView",
                "type": "index-pattern",
                "id": POSTS,
            }
        )
    return {
        "type": "dashboard",
        "id": id_,
        "attributes": attributes,
        "references": references,
        "coreMigrationVersion": "8.8.0",
        "typeMigrationVersion": "8.7.0",
    }


def saved_objects() -> list[dict[str, Any]]:
    """Data views first, so an import creates them before the objects that reference them."""
    return [
        *(data_view(title) for title in DATA_VIEWS),
        saved_search(
            "pantau-negative-public-service",
            "Keluhan layanan publik (negatif)",
            "Negative posts about Banten public services, newest first",
            ["agencies", "region_name", "category", "sentiment.score", "text"],
            NEGATIVE_PUBLIC,
        ),
        saved_search(
            "pantau-emergencies",
            "Bencana dan keadaan darurat",
            "Posts in the bencana category (banjir, longsor, kebakaran) with the agencies and regions named",
            ["region_name", "agencies", "sentiment.label", "text"],
            "category:bencana",
        ),
        dashboard(
            "pantau-overview",
            "Pantau Banten: ringkasan",
            "Volume, sentimen, kategori × wilayah, instansi, platform, topik, peringatan, tanggapan.",
            OVERVIEW_PANELS,
        ),
        dashboard(
            "pantau-agency",
            "Pantau Banten: per instansi",
            "Pilih satu instansi di kontrol 'Instansi' di atas; semua panel mengikuti pilihan itu.",
            AGENCY_PANELS,
            control=True,
        ),
    ]


def to_ndjson() -> str:
    return "".join(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n" for o in saved_objects())


def all_panels() -> tuple[LensPanel, ...]:
    return OVERVIEW_PANELS + AGENCY_PANELS
