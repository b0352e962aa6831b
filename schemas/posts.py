"""Contracts of the messages on the Kafka topics: raw posts in, enriched posts out, dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.vocab import Agency, Category, PiiKind, Platform, Region, SentimentLabel

MAX_TEXT_CHARS = 10_000
"""Bound on ``text`` after normalisation (enforced by the pipeline's validation stage)."""
MAX_RAW_TEXT_CHARS = 100_000
"""Bound on ``text`` as received: anything larger is rejected before normalisation."""
MAX_NESTING = 32
"""Bound on how deep a raw post's JSON nests (unknown fields included): deeper is not a social-media post,
and parsers downstream (pydantic's, Elasticsearch's) have their own, lower limits than Python's."""
MAX_MESSAGE_BYTES = 512_000
"""Bound on a raw message as a whole (unknown fields pass through): its dead letter, base64 in JSON,
must still fit Kafka's default 1 MB message limit."""

MAX_COUNT = 2**63 - 1
"""Engagement counts are Elasticsearch ``long``s: a larger number would be refused only at indexing."""

PostId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.:@-]+$"),
    Field(description="platform's own post id; letters, digits and _ . : @ - only, so it is a safe ES _id"),
]


class Author(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = Field(None, max_length=256)
    handle: str | None = Field(None, max_length=256)
    name: str | None = Field(None, max_length=512)


class Metrics(BaseModel):
    model_config = ConfigDict(extra="allow")

    likes: int | None = Field(None, ge=0, le=MAX_COUNT)
    replies: int | None = Field(None, ge=0, le=MAX_COUNT)
    shares: int | None = Field(None, ge=0, le=MAX_COUNT)
    views: int | None = Field(None, ge=0, le=MAX_COUNT)


class Geo(BaseModel):
    model_config = ConfigDict(extra="allow")

    place: str | None = Field(None, max_length=512)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


LANGUAGE_TAG = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}$"
"""The shape of ``RawPost.lang``: a BCP 47 tag as platforms send it (id, in, und, en-US, zh-Hant)."""


class RawPost(BaseModel):
    """A post as collected from a platform. Unknown fields are kept (``extra="allow"``)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"title": "RawPost"})

    id: PostId
    platform: Platform
    text: str = Field(min_length=1, max_length=MAX_RAW_TEXT_CHARS)
    created_at: AwareDatetime
    author: Author | None = None
    url: str | None = Field(None, max_length=4096)
    lang: str | None = Field(
        None,
        max_length=16,
        pattern=LANGUAGE_TAG,
        description="the platform's language tag (BCP 47: id, in, jv, und, en-US); detected when absent",
    )
    reply_to_id: str | None = Field(None, max_length=256)
    conversation_id: str | None = Field(None, max_length=256)
    metrics: Metrics | None = None
    geo: Geo | None = None

    @property
    def key(self) -> str:
        """Stable identity across replays: Kafka message key and Elasticsearch ``_id``."""
        return f"{self.platform.value}:{self.id}"


class Sentiment(BaseModel):
    label: SentimentLabel
    score: float = Field(ge=0, le=1, description="probability of label")
    scores: dict[SentimentLabel, float] = Field(description="probability of each label, summing to 1")


class TopicRef(BaseModel):
    id: str
    label: str


class EnrichedPost(RawPost):
    """A raw post after the pipeline: ``text`` is PII-masked, the rest is what the models found."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"title": "EnrichedPost"})

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="normalised, PII-masked text")
    agencies: list[Agency] = Field(
        default_factory=list,
        description="agencies the post is really about (a Banten service, its official account included): "
        "what alerts, dashboards and responsiveness count",
    )
    mentions: list[Agency] = Field(
        default_factory=list,
        description="every agency named in the text, figurative and joking uses, agents' ads and offices "
        "outside Banten included",
    )
    official_account: Agency | None = Field(
        None,
        description="the agency whose official account posted it, else null; such posts never count as "
        "complaints, spikes or sentiment",
    )
    region: Region | None = Field(None, description="BPS code of the kab/kota, 3600 province-wide")
    places: list[str] = Field(default_factory=list, description="place names that decided the region")
    sentiment: Sentiment
    category: Category
    category_confidence: float = Field(ge=0, le=1)
    is_public_service: bool
    pii: list[PiiKind] = Field(default_factory=list, description="kinds of personal data masked, no values")
    lang: str | None = Field(None, max_length=16)
    topic: TopicRef | None = None
    model_version: str
    processed_at: AwareDatetime


Stage = Literal["decode", "validate", "enrich", "index", "topics", "responses", "alerts", "delivery"]


class DeadLetter(BaseModel):
    """A message the pipeline could not process, kept whole so it can be fixed and replayed."""

    original: str = Field(description="the message value as received, base64")
    original_key: str | None = Field(None, description="the message key as received, base64")
    stage: Stage
    reason: str
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    failed_at: datetime
    original_truncated: bool = Field(
        False,
        description="the original did not fit the dead-letter topic's message limit: ``original`` is its "
        "first bytes only, and the letter cannot be replayed",
    )
    original_size: int | None = Field(None, ge=0, description="bytes of the whole original message value")
    original_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the whole original message value"
    )
    original_key_truncated: bool = Field(
        False, description="``original_key`` holds only the key's first bytes"
    )
