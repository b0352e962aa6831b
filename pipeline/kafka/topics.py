"""Create the pipeline's topics with their final partition count, and describe them."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from pydantic import BaseModel

from pipeline.kafka.config import kafka_python_config
from pipeline.settings import Settings


class TopicInfo(BaseModel):
    name: str
    partitions: int | None


def pipeline_topics(settings: Settings) -> dict[str, int]:
    """Topic → partitions. Discovery's input has one partition: one owner, one set of topic ids."""
    partitions = settings.topic_partitions
    return {
        settings.topic_raw: partitions,
        settings.topic_enriched: partitions,
        settings.topic_dead_letter: partitions,
        settings.topic_topics_input: 1,
        settings.topic_topics: partitions,
    }


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Per-topic settings: ``pantau.topics`` carries one message per topic id and a tombstone when it
    ends, so it is compacted (a consumer reading it from the start gets the live topics, not history)."""
    return {settings.topic_topics: {"cleanup.policy": "compact"}}


def ensure_topics(settings: Settings, bootstrap: str) -> list[TopicInfo]:
    """Create missing topics; existing ones are kept (a partition count is never changed silently)."""
    admin = KafkaAdminClient(**kafka_python_config(settings, bootstrap))
    configs = topic_configs(settings)
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=count,
                replication_factor=settings.topic_replication,
                topic_configs=configs.get(name, {}),
            )
            for name, count in pipeline_topics(settings).items()
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent `pantau up` won the race
                admin.create_topics(new)
        return describe_topics(settings, bootstrap, admin)
    finally:
        admin.close()


def describe_topics(
    settings: Settings, bootstrap: str, admin: KafkaAdminClient | None = None
) -> list[TopicInfo]:
    own = admin is None
    admin = admin or KafkaAdminClient(**kafka_python_config(settings, bootstrap))
    try:
        names = pipeline_topics(settings)
        present = set(admin.list_topics())
        described = {
            t.get("name", t.get("topic")): len(t["partitions"])
            for t in admin.describe_topics([n for n in names if n in present])
        }
        return [TopicInfo(name=n, partitions=described.get(n)) for n in names]
    finally:
        if own:
            admin.close()
