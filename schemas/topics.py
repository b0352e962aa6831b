"""Contracts of the emerging-topics stage: what goes in, what a topic looks like, what survives a restart."""

from __future__ import annotations

import base64

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.posts import EnrichedPost, TopicRef
from schemas.vocab import Agency, Category, Region, SentimentLabel

STATE_VERSION = 2
"""Bumped when ``TopicState``'s layout changes, so an old changelog is recognised rather than misread.
Version 1 kept the whole state in one entry (``LEGACY_STATE_KEY``); version 2 keeps one entry per topic."""
SEQ_KEY = b"seq"
TOPIC_KEY_PREFIX = b"topic:"
LEGACY_STATE_KEY = b"state"


class TopicPost(BaseModel):
    """The slice of an enriched post that topic discovery needs; the text is already PII-masked."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(min_length=1)
    created_at: AwareDatetime
    text: str
    agencies: list[Agency] = Field(default_factory=list)
    region: Region | None = None
    sentiment: SentimentLabel = SentimentLabel.NEUTRAL
    category: Category = Category.LAYANAN_UMUM

    @classmethod
    def from_enriched(cls, post: EnrichedPost) -> TopicPost:
        return cls(
            key=post.key,
            created_at=post.created_at,
            text=post.text,
            agencies=post.agencies,
            region=post.region,
            sentiment=post.sentiment.label,
            category=post.category,
        )


class TopicInput(BaseModel):
    """A ``pantau.topics.input`` message: a public-service post with its float16 topic embedding (base64)."""

    post: TopicPost
    embedding: str = Field(description="base64 of the little-endian float16 topic-layer embedding")

    @classmethod
    def build(cls, post: TopicPost, embedding: np.ndarray) -> TopicInput:
        return cls(post=post, embedding=base64.b64encode(embedding.astype("<f2").tobytes()).decode())

    def vector(self) -> np.ndarray:
        return np.frombuffer(base64.b64decode(self.embedding), dtype="<f2").astype(np.float32)


class TopicAssignment(BaseModel):
    """A ``pantau.topics.assignments`` message, keyed by the post's key: the topic a post belongs to now, or
    none (it left every topic). The index agent, the only writer of post documents, puts it on the post's
    document; a consumer reading the compacted topic from the start gets every post's latest topic."""

    post_key: str = Field(min_length=1)
    created_at: AwareDatetime = Field(description="the post's own time, which names its monthly index")
    topic: TopicRef | None = None
    assigned_at: AwareDatetime


class AgencyCount(BaseModel):
    agency: Agency
    count: int


class RegionCount(BaseModel):
    region: Region
    count: int


class SentimentMix(BaseModel):
    negative: int = 0
    neutral: int = 0
    positive: int = 0


class RepresentativePost(BaseModel):
    key: str
    text: str


class EmergingTopic(BaseModel):
    """A story in the current window, as published on ``pantau.topics`` and indexed in ``pantau-topics``.

    ``growth`` is ``posts_last_hour / (posts_prev_hour + 1)``: the +1 keeps a topic going from 0 to 1 post
    from looking infinite while still ranking 0 → 12 far above 10 → 12. ``first_seen`` is the earliest post
    ever counted in the topic (kept after that post leaves the window); ``last_seen`` the latest one.
    """

    id: str
    label: str
    terms: list[str] = Field(default_factory=list, description="distinctive terms, best first")
    size: int = Field(ge=0, description="posts in the window")
    posts_last_hour: int = Field(0, ge=0)
    posts_prev_hour: int = Field(0, ge=0)
    growth: float = Field(0.0, ge=0)
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    updated_at: AwareDatetime
    top_agencies: list[AgencyCount] = Field(default_factory=list)
    top_regions: list[RegionCount] = Field(default_factory=list)
    sentiment: SentimentMix = Field(default_factory=SentimentMix)
    representative_posts: list[RepresentativePost] = Field(default_factory=list, max_length=3)
    merged_ids: list[str] = Field(default_factory=list, description="ids of topics folded into this one")


class Topic(EmergingTopic):
    """An ``EmergingTopic`` plus what discovery keeps to itself between updates."""

    centroid: list[float] = Field(default_factory=list, description="unit vector in embedding space")
    misses: int = Field(0, ge=0, description="consecutive updates without a matching cluster")

    def ref(self) -> TopicRef:
        return TopicRef(id=self.id, label=self.label)

    def public_view(self) -> EmergingTopic:
        """What consumers and dashboards get: no centroid, no bookkeeping."""
        return EmergingTopic.model_validate(self.model_dump(exclude={"centroid", "misses"}))


class TopicState(BaseModel):
    """Everything needed to resume discovery after a restart (a Faust table value / changelog entry).

    The window's posts are not in here (they are replayed from their own topic/index); ``seq`` counts
    updates so that a consumer can ignore a stale state.
    """

    version: int = STATE_VERSION
    seq: int = 0
    topics: dict[str, Topic] = Field(default_factory=dict)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> TopicState:
        """A state written whole (version 1, or ``to_json``)."""
        state = cls.model_validate_json(data)
        if state.version not in (1, STATE_VERSION):
            raise ValueError(f"topic state version {state.version}, expected {STATE_VERSION}")
        return state

    def to_entries(self) -> dict[bytes, bytes]:
        """Table entries: the update count and one entry per topic, so each changelog message stays far
        below Kafka's 1 MB message limit however many topics are held (written whole, about 4 KB per
        topic, the state passed it at about 240 topics)."""
        entries = {SEQ_KEY: _Seq(version=STATE_VERSION, seq=self.seq).model_dump_json().encode()}
        for tid, topic in self.topics.items():
            entries[TOPIC_KEY_PREFIX + tid.encode()] = topic.model_dump_json().encode()
        return entries

    @classmethod
    def from_entries(cls, entries: list[tuple[bytes, bytes]]) -> tuple[TopicState, list[str]]:
        """The state and a note for each entry that could not be read (left out: one topic, not all)."""
        problems: list[str] = []
        seq, topics = 0, {}
        for key, value in entries:
            try:
                if key == SEQ_KEY:
                    stored = _Seq.model_validate_json(value)
                    if stored.version != STATE_VERSION:
                        raise ValueError(f"version {stored.version}, expected {STATE_VERSION}")
                    seq = max(seq, stored.seq)
                elif key.startswith(TOPIC_KEY_PREFIX):
                    topic = Topic.model_validate_json(value)
                    topics[topic.id] = topic
                elif key == LEGACY_STATE_KEY:
                    legacy = cls.from_json(value)
                    seq = max(seq, legacy.seq)
                    topics = legacy.topics | topics
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                problems.append(f"{key!r}: {exc}")
        return cls(seq=seq, topics=topics), problems


class _Seq(BaseModel):
    version: int
    seq: int
