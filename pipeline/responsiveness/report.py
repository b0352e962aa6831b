"""``pantau responsiveness``: per agency (or agency and region), how many complaints, how many answered,
how fast, how many overdue, from the ``pantau-responses`` documents. Percentiles are computed here, since
noida-db has no percentile aggregation; the same code serves Elasticsearch."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError
from pydantic import BaseModel

from schemas.responses import ResponseDocument

PAGE = 1000


class ResponsivenessRow(BaseModel):
    agency: str
    region: str | None = None
    complaints: int
    responded: int
    reply_rate: float
    median_first_response_s: float | None
    p90_first_response_s: float | None
    overdue: int

    def as_json(self, by_region: bool) -> dict[str, Any]:
        return self.model_dump(exclude=set() if by_region else {"region"})


def is_overdue(doc: ResponseDocument, now: datetime) -> bool:
    """Unanswered, not marked by staff, and past its SLA by wall time (whether or not the worker has
    rewritten its status yet)."""
    return doc.first_response_s is None and doc.mark is None and now >= doc.due_at


def nearest_rank(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return float(ordered[max(math.ceil(fraction * len(ordered)), 1) - 1])


def summarise(docs: Iterable[ResponseDocument], now: datetime, by_region: bool) -> list[ResponsivenessRow]:
    """Records marked ``not_a_complaint`` count nowhere; ``handled_elsewhere`` ones count as complaints
    that got no reply here, and never as overdue."""
    groups: dict[tuple[str, str | None], list[ResponseDocument]] = {}
    for doc in docs:
        if doc.mark is not None and doc.mark.kind == "not_a_complaint":
            continue
        region = (doc.region.value if doc.region else None) if by_region else None
        groups.setdefault((doc.agency.value, region), []).append(doc)
    rows = []
    for (agency, region), group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        times = [d.first_response_s for d in group if d.first_response_s is not None]
        rows.append(
            ResponsivenessRow(
                agency=agency,
                region=region,
                complaints=len(group),
                responded=len(times),
                reply_rate=round(len(times) / len(group), 4),
                median_first_response_s=float(statistics.median(times)) if times else None,
                p90_first_response_s=nearest_rank(times, 0.9) if times else None,
                overdue=sum(is_overdue(d, now) for d in group),
            )
        )
    return rows


def read_documents(
    es: Elasticsearch, index: str, since: datetime, agency: str | None, until: datetime | None = None
) -> Iterator[ResponseDocument]:
    """Every record of complaints made since ``since`` (and before ``until``), paged with search_after on
    the key."""
    made: dict[str, str] = {"gte": since.isoformat()}
    if until is not None:
        made["lt"] = until.isoformat()
    filters: list[Mapping[str, Any]] = [{"range": {"created_at": made}}]
    if agency:
        filters.append({"term": {"agency": agency}})
    after: list[Any] | None = None
    while True:
        try:
            response = es.search(
                index=index,
                query={"bool": {"filter": filters}},
                sort=[{"key": "asc"}],
                size=PAGE,
                search_after=after,
            )
        except NotFoundError:
            return
        hits = response["hits"]["hits"]
        for hit in hits:
            yield ResponseDocument.model_validate(hit["_source"])
        if len(hits) < PAGE:
            return
        after = hits[-1]["sort"]
