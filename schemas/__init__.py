"""Pydantic contracts of every message and document Pantau Banten reads or writes."""

from schemas.alerts import Alert, AlertExample, AlertKind, AlertStatus, Severity
from schemas.documents import PostDocument
from schemas.posts import (
    MAX_TEXT_CHARS,
    Author,
    DeadLetter,
    EnrichedPost,
    Geo,
    Metrics,
    RawPost,
    Sentiment,
    TopicRef,
)
from schemas.responses import ResponseDocument, ResponseMark, ThreadPost, ThreadPrune
from schemas.topics import EmergingTopic, TopicAssignment, TopicInput, TopicPost
from schemas.vocab import Agency, Category, PiiKind, Platform, Region, SentimentLabel

__all__ = [
    "MAX_TEXT_CHARS",
    "Agency",
    "Alert",
    "AlertExample",
    "AlertKind",
    "AlertStatus",
    "Author",
    "Category",
    "DeadLetter",
    "EmergingTopic",
    "EnrichedPost",
    "Geo",
    "Metrics",
    "PiiKind",
    "Platform",
    "PostDocument",
    "RawPost",
    "Region",
    "ResponseDocument",
    "ResponseMark",
    "Sentiment",
    "SentimentLabel",
    "Severity",
    "ThreadPost",
    "ThreadPrune",
    "TopicAssignment",
    "TopicInput",
    "TopicPost",
    "TopicRef",
]
