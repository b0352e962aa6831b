"""Reading alerts back from the ``pantau-alerts`` index, as `pantau alerts list` and the demo show them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from elasticsearch import Elasticsearch, NotFoundError
from rich.console import Console

from pipeline.tables import print_table
from schemas.alerts import Alert


def query_alerts(
    es: Elasticsearch,
    index: str,
    raised_since: datetime | None = None,
    kind: str | None = None,
    size: int = 500,
) -> list[Alert]:
    """The latest revision of each alert, newest first."""
    filters: list[dict[str, object]] = []
    if raised_since is not None:
        filters.append({"range": {"raised_at": {"gte": raised_since.isoformat()}}})
    if kind:
        filters.append({"term": {"kind": kind}})
    try:
        es.indices.refresh(index=index)
        hits = es.search(
            index=index, query={"bool": {"filter": filters}}, size=size, sort=[{"raised_at": "desc"}]
        )["hits"]["hits"]
    except NotFoundError:
        return []
    return [Alert.model_validate(h["_source"]) for h in hits]


def render_alerts(console: Console, alerts: list[Alert], title: str | None = None) -> None:
    headers = ("window (UTC)", "kind", "severity", "status", "rev", "key", "count", "expected", "summary")
    rows = [
        (
            f"{a.window_start.astimezone(UTC):%Y-%m-%d %H:%M}",
            a.kind.value,
            a.severity.value,
            a.status.value,
            a.revision,
            a.key,
            a.count,
            f"{a.expected:.1f}",
            a.summary,
        )
        for a in alerts
    ]
    print_table(console, headers, rows, title=title)


def show_demo_alerts(
    es: Elasticsearch, index: str, console: Console, started: datetime, settle: float = 5.0
) -> None:
    """The alerts the demo's sample raised (detection runs beside indexing: wait until none are added)."""
    seen, deadline = -1, time.monotonic() + 30
    alerts: list[Alert] = []
    while time.monotonic() < deadline:
        alerts = query_alerts(es, index, raised_since=started)
        if len(alerts) == seen:
            break
        seen = len(alerts)
        time.sleep(settle)
    if not alerts:
        console.print("no alert raised by the sample")
        return
    render_alerts(
        console,
        alerts[:15],
        title=f"Alerts the sample raised ({len(alerts)}; the sample is old, so none was delivered)",
    )
