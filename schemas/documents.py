"""The Elasticsearch document of an enriched post (mapping: pipeline/sinks/templates/posts-template.json)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.posts import EnrichedPost, TopicRef
from schemas.vocab import REGION_NAMES, Agency, Category, PiiKind, Platform, Region, SentimentLabel


class SentimentFields(BaseModel):
    label: SentimentLabel
    score: float
    negative: float
    neutral: float
    positive: float


class AuthorFields(BaseModel):
    id: str | None = None
    handle: str | None = None
    name: str | None = None


class GeoFields(BaseModel):
    place: str | None = None
    location: dict[str, float] | None = Field(None, description="geo_point {lat, lon}")


class PostDocument(BaseModel):
    """Flat, strictly mapped view of an :class:`EnrichedPost`; unknown raw fields go to ``extra``."""

    model_config = ConfigDict(populate_by_name=True)

    timestamp: AwareDatetime = Field(alias="@timestamp")
    post_id: str
    platform: Platform
    text: str
    author: AuthorFields | None = None
    url: str | None = None
    lang: str | None = None
    reply_to_id: str | None = None
    conversation_id: str | None = None
    likes: int | None = None
    replies: int | None = None
    shares: int | None = None
    views: int | None = None
    geo: GeoFields | None = None
    agencies: list[Agency]
    mentions: list[Agency] = []
    official_account: Agency | None = None
    region: Region | None = None
    region_name: str | None = None
    places: list[str] = []
    sentiment: SentimentFields
    category: Category
    category_confidence: float
    is_public_service: bool
    pii: list[PiiKind] = []
    topic: TopicRef | None = None
    model_version: str
    processed_at: AwareDatetime
    extra: dict[str, Any] = Field(default_factory=dict, description="raw fields outside the contract")

    @classmethod
    def from_post(cls, post: EnrichedPost) -> PostDocument:
        metrics = post.metrics
        geo = None
        if post.geo is not None:
            location = None
            if post.geo.lat is not None and post.geo.lon is not None:
                location = {"lat": post.geo.lat, "lon": post.geo.lon}
            geo = GeoFields(place=post.geo.place, location=location)
        scores = post.sentiment.scores
        return cls(
            timestamp=post.created_at,
            post_id=post.id,
            platform=post.platform,
            text=post.text,
            author=AuthorFields(id=post.author.id, handle=post.author.handle, name=post.author.name)
            if post.author
            else None,
            url=post.url,
            lang=post.lang,
            reply_to_id=post.reply_to_id,
            conversation_id=post.conversation_id,
            likes=metrics.likes if metrics else None,
            replies=metrics.replies if metrics else None,
            shares=metrics.shares if metrics else None,
            views=metrics.views if metrics else None,
            geo=geo,
            agencies=post.agencies,
            mentions=post.mentions,
            official_account=post.official_account,
            region=post.region,
            region_name=REGION_NAMES[post.region] if post.region else None,
            places=post.places,
            sentiment=SentimentFields(
                label=post.sentiment.label,
                score=post.sentiment.score,
                negative=scores.get(SentimentLabel.NEGATIVE, 0.0),
                neutral=scores.get(SentimentLabel.NEUTRAL, 0.0),
                positive=scores.get(SentimentLabel.POSITIVE, 0.0),
            ),
            category=post.category,
            category_confidence=post.category_confidence,
            is_public_service=post.is_public_service,
            pii=post.pii,
            topic=post.topic,
            model_version=post.model_version,
            processed_at=post.processed_at,
            extra=dict(post.model_extra or {}),
        )

    def to_source(self) -> dict[str, Any]:
        """The JSON body sent to Elasticsearch (``@timestamp`` by its alias, no nulls for author extras)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
