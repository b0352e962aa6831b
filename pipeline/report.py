"""Summaries of the index that people read: agency × sentiment and region × category tables."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from schemas.vocab import REGION_NAMES, Category, Region, SentimentLabel


def progress_bar(console: Console) -> Progress:
    """The one progress bar of long commands: description, bar, n/total, elapsed."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,  # piped: the messages alone, no bar redrawn into a log
    )


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
    try:
        es.indices.refresh(index=alias)
    except NotFoundError:  # nothing indexed yet (every post rejected or dead-lettered)
        empty = CrossTab(rows=[], columns=[], counts={})
        return IndexSummary(documents=0, agency_sentiment=empty, region_category=empty)
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


def query_topics(
    es: Any, index: str, since: timedelta, agency: str | None, region: str | None, limit: int
) -> list[dict[str, Any]]:
    """Topics whose last post is within ``since`` of the newest topic's (stream time, so backfills work)."""
    try:
        es.indices.refresh(index=index)
    except NotFoundError:  # discovery has not published yet
        return []
    newest = es.search(index=index, size=1, sort=[{"last_seen": "desc"}], source=["last_seen"])["hits"][
        "hits"
    ]
    if not newest:
        return []
    latest = datetime.fromisoformat(newest[0]["_source"]["last_seen"])
    filters: list[dict[str, Any]] = [{"range": {"last_seen": {"gte": (latest - since).isoformat()}}}]
    if agency:
        filters.append({"term": {"top_agencies.agency": agency}})
    if region:
        filters.append({"term": {"top_regions.region": region}})
    hits = es.search(
        index=index, size=limit, query={"bool": {"filter": filters}}, sort=[{"size": "desc"}, {"id": "asc"}]
    )["hits"]["hits"]
    return [dict(hit["_source"]) for hit in hits]


def topic_row(row: dict[str, Any]) -> list[object]:
    """A topic as plain cells: id, label, size, growth, posts in the last hour, sentiment mix, agencies,
    regions (the top three, with counts)."""
    mix = row.get("sentiment", {})
    return [
        row["id"],
        row["label"],
        row["size"],
        f"{row.get('growth', 0):.1f}",
        row.get("posts_last_hour", 0),
        f"{mix.get('negative', 0)}/{mix.get('neutral', 0)}/{mix.get('positive', 0)}",
        ",".join(f"{a['agency']}:{a['count']}" for a in row.get("top_agencies", [])[:3]),
        ",".join(f"{r['region']}:{r['count']}" for r in row.get("top_regions", [])[:3]),
    ]


def render_topics(out: Console, rows: list[dict[str, Any]], title: str = "Emerging topics") -> None:
    table = Table(title=title)
    for column, justify in (
        ("topic", "left"),
        ("size", "right"),
        ("growth", "right"),
        ("neg/neu/pos", "right"),
        ("agencies", "left"),
        ("regions", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        mix = row.get("sentiment", {})
        table.add_row(
            f"{row['label']}\n[dim]{row['id']}[/dim]",
            str(row["size"]),
            f"{row.get('growth', 0):.1f}× ({row.get('posts_last_hour', 0)}/h)",
            f"{mix.get('negative', 0)}/{mix.get('neutral', 0)}/{mix.get('positive', 0)}",
            ", ".join(f"{a['agency']} {a['count']}" for a in row.get("top_agencies", [])[:3]),
            ", ".join(f"{r['region']} {r['count']}" for r in row.get("top_regions", [])[:3]),
        )
    out.print(table)
