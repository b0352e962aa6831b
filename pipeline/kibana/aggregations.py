"""What Elasticsearch runs for a Lens panel: its KQL as a query and its columns as nested aggregations.

Lens builds the same request from the same columns (buckets nested in column order, metrics inside the
innermost bucket, terms ordered by a metric column), so running this on a cluster shows that the panel's
fields aggregate and return buckets without a Kibana.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.kibana.lens import Column, LensPanel

NOT_ON_NOIDA: frozenset[str] = frozenset({"median"})
"""Lens operations that need aggregations the embedded noida-db lacks (percentiles): checked statically."""
_CLAUSE = re.compile(r'^\s*([\w.@]+)\s*:\s*("[^"]*"|[\w.-]+)\s*$')
_MISSING = re.compile(r"^\s*not\s+([\w.@]+)\s*:\s*\*\s*$")


def kql_query(kql: str) -> dict[str, Any]:
    """The panels' KQL (``field:value`` and ``not field:*`` clauses joined by ``and``) as a bool query;
    anything else is refused, so a panel cannot carry a filter this check does not understand."""
    if not kql.strip():
        return {"match_all": {}}
    clauses: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for part in re.split(r"\s+and\s+", kql.strip()):
        if absent := _MISSING.match(part):
            missing.append({"exists": {"field": absent.group(1)}})
            continue
        match = _CLAUSE.match(part)
        if not match:
            raise ValueError(f"unsupported KQL clause {part!r} in {kql!r}")
        field, raw = match.groups()
        value: Any = raw.strip('"')
        if value in ("true", "false"):
            value = value == "true"
        clauses.append({"term": {field: value}})
    query: dict[str, Any] = {"filter": clauses}
    if missing:
        query["must_not"] = missing
    return {"bool": query}


def _metric(column: Column) -> dict[str, Any] | None:
    if column.operation == "count":
        return None
    if column.operation == "median":
        return {"percentiles": {"field": column.field, "percents": [50]}}
    name = {"average": "avg"}.get(column.operation, column.operation)
    return {name: {"field": column.field}}


def panel_aggregations(panel: LensPanel) -> dict[str, Any]:
    """Nested aggregations named by column name; the innermost bucket holds every metric column."""
    metrics = {c.name: agg for c in panel.metrics if (agg := _metric(c)) is not None}
    aggs: dict[str, Any] = dict(metrics)
    by_name = {c.name: c for c in panel.columns}
    for column in reversed(panel.buckets):
        if column.operation == "date_histogram":
            unit = "fixed_interval" if column.interval.endswith(("h", "m", "s")) else "calendar_interval"
            body: dict[str, Any] = {"date_histogram": {"field": column.field, unit: column.interval}}
        else:
            order_by = by_name[column.order_by or "count"]
            key = "_count" if order_by.operation == "count" else order_by.name
            if order_by.operation == "median":
                key = f"{order_by.name}.50"
            body = {"terms": {"field": column.field, "size": column.size, "order": {key: "desc"}}}
            if key != "_count":  # the ordering metric must sit at this level
                aggs = {**aggs, order_by.name: metrics[order_by.name]}
        if aggs:
            body["aggs"] = aggs
        aggs = {column.name: body}
    return aggs


def request(panel: LensPanel) -> dict[str, Any]:
    return {"size": 0, "query": kql_query(panel.kql), "aggs": panel_aggregations(panel)}
