"""Summaries of the index that people read: agency × sentiment and region × category tables."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from schemas.vocab import REGION_NAMES, Category, Region, SentimentLabel

NO_REGION = "none"
REGION_SHORT = {
    "3600": "Banten",
    "3601": "Pdglg",
    "3602": "Lebak",
    "3603": "KabTng",
    "3604": "KabSrg",
    "3671": "KotaTng",
    "3672": "Clgn",
    "3673": "KotaSrg",
    "3674": "Tgsel",
    NO_REGION: "–",
}


class CrossTab(BaseModel):
    rows: list[str]
    columns: list[str]
    counts: dict[str, dict[str, int]]

    def total(self, row: str) -> int:
        return sum(self.counts.get(row, {}).values())


class IndexSummary(BaseModel):
    documents: int
    agency_sentiment: CrossTab
    region_category: CrossTab


def _crosstab(response: dict[str, Any], outer: str, inner: str, columns: list[str]) -> CrossTab:
    counts: dict[str, dict[str, int]] = {}
    for bucket in response["aggregations"][outer]["buckets"]:
        counts[str(bucket["key"])] = {str(b["key"]): int(b["doc_count"]) for b in bucket[inner]["buckets"]}
    rows = sorted(counts, key=lambda r: -sum(counts[r].values()))
    seen = {c for row in counts.values() for c in row}
    return CrossTab(rows=rows, columns=[c for c in columns if c in seen], counts=counts)


def summarise(es: Elasticsearch, alias: str, keys: list[str] | None = None) -> IndexSummary:
    """Aggregate the whole index, or only the posts with these keys (one run's posts)."""
    query: dict[str, Any] = {"ids": {"values": keys}} if keys is not None else {"match_all": {}}
    es.indices.refresh(index=alias)
    response = es.search(
        index=alias,
        size=0,
        query=query,
        track_total_hits=True,
        aggs={
            "agency": {
                "terms": {"field": "agencies", "size": 50},
                "aggs": {"sentiment": {"terms": {"field": "sentiment.label", "size": 3}}},
            },
            "region": {
                "terms": {"field": "region", "size": 20, "missing": NO_REGION},
                "aggs": {"category": {"terms": {"field": "category", "size": 20}}},
            },
        },
    )
    body = dict(response)
    sentiments = [s.value for s in (SentimentLabel.NEGATIVE, SentimentLabel.NEUTRAL, SentimentLabel.POSITIVE)]
    return IndexSummary(
        documents=int(body["hits"]["total"]["value"]),
        agency_sentiment=_crosstab(body, "agency", "sentiment", sentiments),
        region_category=_crosstab(body, "region", "category", [c.value for c in Category]),
    )


def region_label(code: str) -> str:
    if code == NO_REGION:
        return "(unknown / outside Banten)"
    try:
        return f"{code} {REGION_NAMES[Region(code)]}"
    except ValueError:
        return code


def render_summary(console: Console, summary: IndexSummary) -> None:
    table = Table(title="Agency × sentiment", show_footer=False)
    table.add_column("agency")
    for column in summary.agency_sentiment.columns:
        table.add_column(column, justify="right")
    table.add_column("total", justify="right", style="bold")
    for row in summary.agency_sentiment.rows:
        counts = summary.agency_sentiment.counts[row]
        table.add_row(
            row,
            *(str(counts.get(c, 0)) for c in summary.agency_sentiment.columns),
            str(summary.agency_sentiment.total(row)),
        )
    console.print(table)

    table = Table(title="Category × region (posts)")
    crosstab = summary.region_category
    regions = crosstab.rows
    table.add_column("category")
    for region in regions:
        table.add_column(REGION_SHORT.get(region, region), justify="right")
    table.add_column("total", justify="right", style="bold")
    categories = sorted(crosstab.columns, key=lambda c: -sum(crosstab.counts[r].get(c, 0) for r in regions))
    for category in categories:
        cells = [crosstab.counts[r].get(category, 0) for r in regions]
        table.add_row(category, *(str(n or "·") for n in cells), str(sum(cells)))
    table.add_row(
        "total",
        *(str(crosstab.total(r)) for r in regions),
        str(sum(crosstab.total(r) for r in regions)),
        style="bold",
    )
    console.print(table)
    console.print("regions: " + ", ".join(f"{REGION_SHORT.get(r, r)} = {region_label(r)}" for r in regions))
