"""What the brief shows, read from Elasticsearch for one period and the period before it.

Days are Asia/Jakarta days (WIB, UTC+7 all year): the cluster buckets by the hour in UTC and the hours are
folded into local days here, which works the same on Elasticsearch and on the embedded noida-db.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError
from pydantic import BaseModel, Field

from pipeline.responsiveness.report import ResponsivenessRow, read_documents, summarise
from pipeline.settings import Settings

WIB = timezone(timedelta(hours=7), "WIB")
SENTIMENTS = ("negative", "neutral", "positive")


class Period(BaseModel):
    start: datetime
    end: datetime

    def previous(self) -> Period:
        return Period(start=self.start - (self.end - self.start), end=self.start)

    def days(self) -> list[str]:
        """Local (WIB) dates the period touches, oldest first."""
        first, last = (
            self.start.astimezone(WIB).date(),
            (self.end - timedelta(seconds=1)).astimezone(WIB).date(),
        )
        return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


class Headline(BaseModel):
    posts: int
    negative: int
    public_service: int
    agencies: int

    @property
    def negative_share(self) -> float:
        return self.negative / self.posts if self.posts else 0.0


class Post(BaseModel):
    key: str
    text: str
    url: str | None = None
    platform: str
    author: str | None = None
    created_at: datetime
    agencies: list[str] = Field(default_factory=list)
    region_name: str | None = None
    engagement: int = 0


class Topic(BaseModel):
    label: str
    size: int
    growth: float
    last_seen: datetime
    agencies: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)


class Alert(BaseModel):
    raised_at: datetime
    kind: str = ""
    severity: str = ""
    summary: str = ""
    agencies: list[str] = Field(default_factory=list)
    kibana_url: str | None = None


class Indices(BaseModel):
    """Where the brief reads, as configured (``PANTAU_INDEX_PREFIX``, ``PANTAU_TOPICS_INDEX``,
    ``PANTAU_ALERTS_INDEX``, ``PANTAU_RESPONSES_INDEX``); the alerts and responses sections show once their
    index exists."""

    posts: str
    topics: str
    alerts: str
    responses: str

    @classmethod
    def of(cls, settings: Settings) -> Indices:
        return cls(
            posts=settings.index_alias,
            topics=settings.topics_index,
            alerts=settings.alerts_index,
            responses=settings.responses_index,
        )


class BriefData(BaseModel):
    period: Period
    agency: str | None = None
    region: str | None = None
    current: Headline
    previous: Headline
    volume_by_agency: dict[str, dict[str, int]]
    """agency → WIB date → posts"""
    sentiment_by_day: dict[str, dict[str, int]]
    """WIB date → sentiment label → posts"""
    category_region: dict[str, dict[str, int]]
    """region name → category → public-service posts"""
    region_counts: dict[str, tuple[int, int]]
    """BPS region code → (posts, negative posts)"""
    topics: list[Topic]
    alerts: list[Alert] | None
    """None when the alerts index does not exist (yet)"""
    responsiveness: list[ResponsivenessRow] | None
    """per agency, as `pantau responsiveness` reports it; None when the responses index does not exist"""
    engaged_negative: list[Post]
    indices: Indices


CITIZENS: dict[str, Any] = {"bool": {"must_not": [{"exists": {"field": "official_account"}}]}}
"""Posts by agencies' official accounts count nowhere in the brief, as in the Kibana panels."""


def _filters(period: Period, agency: str | None, region: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"range": {"@timestamp": {"gte": period.start.isoformat(), "lt": period.end.isoformat()}}},
        CITIZENS,
    ]
    if agency:
        out.append({"term": {"agencies": agency}})
    if region:
        out.append({"term": {"region": region}})
    return out


def _headline(es: Elasticsearch, index: str, filters: list[dict[str, Any]]) -> Headline:
    response = es.search(
        index=index,
        size=0,
        track_total_hits=True,
        query={"bool": {"filter": filters}},
        aggs={
            "negative": {"filter": {"term": {"sentiment.label": "negative"}}},
            "public": {"filter": {"term": {"is_public_service": True}}},
            "agencies": {"terms": {"field": "agencies", "size": 100}},
        },
    )
    aggs = response["aggregations"]
    return Headline(
        posts=int(response["hits"]["total"]["value"]),
        negative=int(aggs["negative"]["doc_count"]),
        public_service=int(aggs["public"]["doc_count"]),
        agencies=len(aggs["agencies"]["buckets"]),
    )


def _local_day(bucket: dict[str, Any]) -> str:
    return datetime.fromtimestamp(bucket["key"] / 1000, tz=WIB).date().isoformat()


def _hours(field: str = "@timestamp") -> dict[str, Any]:
    return {"date_histogram": {"field": field, "fixed_interval": "1h", "min_doc_count": 1}}


def _source_post(hit: dict[str, Any]) -> Post:
    src = hit["_source"]
    return Post(
        key=hit["_id"],
        text=src.get("text", ""),
        url=src.get("url"),
        platform=src.get("platform", ""),
        author=(src.get("author") or {}).get("handle"),
        created_at=datetime.fromisoformat(src["@timestamp"]),
        agencies=src.get("agencies") or [],
        region_name=src.get("region_name"),
        engagement=sum(int(src.get(k) or 0) for k in ("likes", "replies", "shares")),
    )


def _exists(es: Elasticsearch, index: str) -> bool:
    try:
        return bool(es.indices.exists(index=index))
    except NotFoundError:
        return False


def collect(
    es: Elasticsearch,
    indices: Indices,
    period: Period,
    agency: str | None = None,
    region: str | None = None,
    top: int = 6,
) -> BriefData:
    posts_index = indices.posts
    es.indices.refresh(index=posts_index)
    filters = _filters(period, agency, region)
    query = {"bool": {"filter": filters}}
    main = es.search(
        index=posts_index,
        size=0,
        query=query,
        aggs={
            "agency": {"terms": {"field": "agencies", "size": top}, "aggs": {"hour": _hours()}},
            "hour": {
                "date_histogram": _hours()["date_histogram"],
                "aggs": {"s": {"terms": {"field": "sentiment.label"}}},
            },
            "public": {
                "filter": {"term": {"is_public_service": True}},
                "aggs": {
                    "region": {
                        "terms": {"field": "region_name", "size": 10},
                        "aggs": {"category": {"terms": {"field": "category", "size": 12}}},
                    }
                },
            },
            "region": {
                "terms": {"field": "region", "size": 10},
                "aggs": {"negative": {"filter": {"term": {"sentiment.label": "negative"}}}},
            },
        },
    )["aggregations"]

    volume: dict[str, dict[str, int]] = {}
    for bucket in main["agency"]["buckets"]:
        days: dict[str, int] = defaultdict(int)
        for hour in bucket["hour"]["buckets"]:
            days[_local_day(hour)] += int(hour["doc_count"])
        volume[str(bucket["key"])] = dict(days)
    sentiment: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for hour in main["hour"]["buckets"]:
        for s in hour["s"]["buckets"]:
            sentiment[_local_day(hour)][str(s["key"])] += int(s["doc_count"])
    category_region = {
        str(b["key"]): {str(c["key"]): int(c["doc_count"]) for c in b["category"]["buckets"]}
        for b in main["public"]["region"]["buckets"]
    }
    regions = {
        str(b["key"]): (int(b["doc_count"]), int(b["negative"]["doc_count"]))
        for b in main["region"]["buckets"]
    }

    negative = {"bool": {"filter": [*filters, {"term": {"sentiment.label": "negative"}}]}}
    hits = es.search(
        index=posts_index, size=200, query=negative, sort=[{"likes": "desc"}, {"shares": "desc"}]
    )["hits"]["hits"]
    engaged = sorted((_source_post(h) for h in hits), key=lambda p: (-p.engagement, p.key))[:8]

    return BriefData(
        period=period,
        agency=agency,
        region=region,
        current=_headline(es, posts_index, filters),
        previous=_headline(es, posts_index, _filters(period.previous(), agency, region)),
        volume_by_agency=volume,
        sentiment_by_day={day: dict(v) for day, v in sentiment.items()},
        category_region=category_region,
        region_counts=regions,
        topics=_topics(es, indices.topics, period, agency, region),
        alerts=_alerts(es, indices.alerts, period, agency) if _exists(es, indices.alerts) else None,
        responsiveness=_responsiveness(es, indices.responses, period, agency)
        if _exists(es, indices.responses)
        else None,
        engaged_negative=engaged,
        indices=indices,
    )


def _topics(
    es: Elasticsearch, index: str, period: Period, agency: str | None, region: str | None
) -> list[Topic]:
    if not _exists(es, index):
        return []
    es.indices.refresh(index=index)
    filters: list[dict[str, Any]] = [
        {"range": {"last_seen": {"gte": period.start.isoformat(), "lt": period.end.isoformat()}}}
    ]
    if agency:
        filters.append({"term": {"top_agencies.agency": agency}})
    if region:
        filters.append({"term": {"top_regions.region": region}})
    hits = es.search(
        index=index, size=5, query={"bool": {"filter": filters}}, sort=[{"growth": "desc"}, {"size": "desc"}]
    )["hits"]["hits"]
    return [
        Topic(
            label=h["_source"]["label"],
            size=h["_source"]["size"],
            growth=h["_source"].get("growth", 0.0),
            last_seen=datetime.fromisoformat(h["_source"]["last_seen"]),
            agencies=[a["agency"] for a in h["_source"].get("top_agencies", [])],
            examples=[p["text"] for p in h["_source"].get("representative_posts", [])][:2],
        )
        for h in hits
    ]


def _alerts(es: Elasticsearch, index: str, period: Period, agency: str | None) -> list[Alert]:
    filters: list[dict[str, Any]] = [
        {"range": {"raised_at": {"gte": period.start.isoformat(), "lt": period.end.isoformat()}}}
    ]
    if agency:
        filters.append({"term": {"agencies": agency}})
    hits = es.search(index=index, size=20, query={"bool": {"filter": filters}}, sort=[{"raised_at": "desc"}])[
        "hits"
    ]["hits"]
    return [
        Alert.model_validate({k: v for k, v in h["_source"].items() if k in Alert.model_fields}) for h in hits
    ]


def _responsiveness(
    es: Elasticsearch, index: str, period: Period, agency: str | None
) -> list[ResponsivenessRow]:
    """Complaints made in the period, per agency, counted as `pantau responsiveness` counts them (records
    marked not-a-complaint left out, overdue judged at the period's end)."""
    es.indices.refresh(index=index)
    docs = read_documents(es, index, period.start, agency, until=period.end)
    return summarise(docs, now=period.end, by_region=False)


def newest_post_time(es: Elasticsearch, index: str, keys: list[str] | None = None) -> datetime | None:
    """The newest post's time (of these keys), for a brief of a sample or backfill rather than of now."""
    query: dict[str, Any] = {"ids": {"values": keys}} if keys is not None else {"match_all": {}}
    hits = es.search(
        index=index, size=1, query=query, sort=[{"@timestamp": "desc"}], source_includes=["@timestamp"]
    )
    found = hits["hits"]["hits"]
    return datetime.fromisoformat(found[0]["_source"]["@timestamp"]) if found else None
