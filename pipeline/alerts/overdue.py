"""The ``overdue_response`` digest: once a period (a day, from ``PANTAU_RESPONSE_DIGEST_AT`` in
Asia/Jakarta), one alert per agency listing its complaints still unanswered past their SLA, for that
agency's subscribers (``match: {kinds: [overdue_response], agencies: [...]}``).

The alert's id is derived from the agency and the period's start, so a replay, or a restarted worker that
raises the period's digest again, names the same alert; delivery logs each message id in
``pantau-deliveries`` and does not send it twice. Records staff marked (handled elsewhere, not a complaint)
are left out, as `pantau responsiveness` leaves them out of its overdue count (``is_overdue``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from elasticsearch import AsyncElasticsearch

from pipeline.alerts.detect import discover_link
from pipeline.responsiveness.report import is_overdue
from schemas.alerts import Alert, AlertExample, AlertKind, Severity, alert_id
from schemas.responses import ResponseDocument
from schemas.vocab import Agency

JAKARTA = ZoneInfo("Asia/Jakarta")
EXAMPLES = 3
"""Complaints a digest names (the oldest; the alert's contract carries three examples): the count and the
Kibana link give the rest."""
READ_LIMIT = 10_000


@dataclass(frozen=True)
class PostText:
    """What the digest shows of a complaint: the indexed (PII-masked) text and the post's link."""

    text: str
    url: str | None = None


def digest_key(agency: Agency) -> str:
    return f"overdue_response:agency={agency.value}"


class OverdueDigest:
    """Decides the period and its alerts; reads nothing (``read_overdue`` and ``read_texts`` do)."""

    def __init__(
        self,
        at: str = "07:00",
        every: float = 86400.0,
        kibana_url: str | None = None,
        responses_view: str = "pantau-responses",
    ) -> None:
        hours, minutes = at.split(":")
        self.at = clock_time(int(hours), int(minutes))
        self.every = every
        self.kibana_url = kibana_url
        self.responses_view = responses_view

    def period(self, now: datetime) -> datetime:
        """The start of the period ``now`` is in: the digest time plus a whole number of periods."""
        anchor = datetime.combine(now.astimezone(JAKARTA).date(), self.at, JAKARTA)
        steps = math.floor((now - anchor).total_seconds() / self.every)
        return (anchor + timedelta(seconds=steps * self.every)).astimezone(UTC)

    def overdue(
        self, docs: Iterable[ResponseDocument], now: datetime
    ) -> dict[Agency, list[ResponseDocument]]:
        """Unmarked, unanswered records past their SLA, per agency, oldest first."""
        out: dict[Agency, list[ResponseDocument]] = {}
        for doc in sorted(docs, key=lambda d: (d.created_at, d.key)):
            if is_overdue(doc, now):
                out.setdefault(doc.agency, []).append(doc)
        return out

    def alerts(
        self,
        overdue: Mapping[Agency, list[ResponseDocument]],
        texts: Mapping[str, PostText],
        now: datetime,
    ) -> list[Alert]:
        period = self.period(now)
        out = []
        for agency, docs in sorted(overdue.items()):
            if not docs:
                continue
            oldest = docs[0].created_at.astimezone(JAKARTA).strftime("%d-%m %H:%M")
            summary = (
                f"{len(docs)} keluhan kepada {agency.value.upper()} belum ditanggapi melewati batas waktu; "
                f"yang tertua sejak {oldest} WIB."
            )
            key = digest_key(agency)
            link = None
            if self.kibana_url:
                query = f'agency : "{agency.value}" and status : "overdue"'
                start = min(d.created_at for d in docs)
                link = discover_link(self.kibana_url, self.responses_view, start, now, query)
            out.append(
                Alert(
                    id=alert_id(key, period),
                    key=key,
                    kind=AlertKind.OVERDUE_RESPONSE,
                    severity=Severity.WARNING,
                    agencies=[agency],
                    window_start=period,
                    window_end=now,
                    count=len(docs),
                    expected=0.0,
                    summary=summary,
                    examples=[self.example(d, texts.get(d.complaint_key)) for d in docs[:EXAMPLES]],
                    kibana_url=link,
                    raised_at=now,
                )
            )
        return out

    @staticmethod
    def example(doc: ResponseDocument, post: PostText | None) -> AlertExample:
        when = doc.created_at.astimezone(JAKARTA).strftime("%d-%m %H:%M")
        text = f"{when} WIB · {post.text if post else doc.complaint_key}"
        return AlertExample(key=doc.complaint_key, text=text[:1000], url=post.url if post else None)


async def read_overdue(es: AsyncElasticsearch, index: str, now: datetime) -> list[ResponseDocument]:
    """Records past their due time and not answered (the digest filters marks with ``is_overdue``)."""
    if not await es.indices.exists(index=index):
        return []
    await es.indices.refresh(index=index)
    query = {
        "bool": {
            "filter": [
                {"range": {"due_at": {"lte": now.isoformat()}}},
                {"terms": {"status": ["open", "overdue"]}},
            ]
        }
    }
    response = await es.search(index=index, query=query, size=READ_LIMIT, sort=[{"created_at": "asc"}])
    return [ResponseDocument.model_validate(hit["_source"]) for hit in response["hits"]["hits"]]


async def read_texts(es: AsyncElasticsearch, posts_index: str, keys: list[str]) -> dict[str, PostText]:
    if not keys:
        return {}
    response = await es.search(
        index=posts_index,
        query={"ids": {"values": keys}},
        size=len(keys),
        source_includes=["text", "url"],
    )
    hits: list[dict[str, Any]] = response["hits"]["hits"]
    return {h["_id"]: PostText(h["_source"].get("text", ""), h["_source"].get("url")) for h in hits}
