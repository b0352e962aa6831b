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
    replication: int | None = None
    """Replicas of the topic's partitions (the fewest); None for a missing topic."""


def pipeline_topics(settings: Settings) -> dict[str, int]:
    """Topic → partitions. Discovery's input has one partition: one owner, one set of topic ids."""
    partitions = settings.topic_partitions
    return {
        settings.topic_raw: partitions,
        settings.topic_enriched: partitions,
        settings.topic_dead_letter: partitions,
        settings.topic_topics_input: 1,
        settings.topic_topics: partitions,
        settings.topic_assignments: partitions,  # co-partitioned with the enriched topic: one index agent
        settings.topic_responses_input: partitions,  # keyed by thread; the responses table's partitions
        settings.topic_ingest_cursors: 1,  # one partition: a connector's marker comes after all its cursors
        settings.topic_alerts_input: 1,  # detection needs every post in one place: one owner
        settings.topic_alerts: partitions,
    }


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Per-topic settings: ``pantau.topics`` carries one message per topic id and a tombstone when it
    ends, so it is compacted (a consumer reading it from the start gets the live topics, not history);
    ``pantau.topics.assignments`` likewise keeps each post's latest topic, ``pantau.ingest.cursors`` each
    connector stream's latest cursor."""
    return {name: {"cleanup.policy": "compact"} for name in compacted_topics(settings)}


def compacted_topics(settings: Settings) -> frozenset[str]:
    """The topics ``topic_configs`` compacts: their offsets may have holes (``kafka/transport.py``)."""
    return frozenset((settings.topic_topics, settings.topic_assignments, settings.topic_ingest_cursors))


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
            t.get("name", t.get("topic")): t["partitions"]
            for t in admin.describe_topics([n for n in names if n in present])
        }
        return [
            TopicInfo(
                name=n,
                partitions=len(described[n]) if n in described else None,
                replication=min((len(p.get("replica_nodes") or []) for p in described[n]), default=None)
                if n in described
                else None,
            )
            for n in names
        ]
    finally:
        if own:
            admin.close()


def topic_max_message_bytes(settings: Settings, bootstrap: str, topic: str) -> int | None:
    """The topic's ``max.message.bytes`` as the broker reports it, None where it does not (the embedded
    broker reports no topic configs and takes messages of any size)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(**kafka_python_config(settings, bootstrap))
    try:
        wanted = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": None})
        described = admin.describe_configs([wanted], config_filter="all")  # defaults too
    except Exception:
        return None
    finally:
        admin.close()
    return _find_max_message_bytes(described)


def _find_max_message_bytes(described: object) -> int | None:
    """``max.message.bytes`` from a describe_configs answer, whichever shape the client returns it in."""
    if isinstance(described, dict):
        for key, value in described.items():
            if key == "max.message.bytes":
                inner = value.get("value") if isinstance(value, dict) else value
                try:
                    return int(str(inner))
                except ValueError:
                    return None
            found = _find_max_message_bytes(value)
            if found is not None:
                return found
    elif isinstance(described, (list, tuple)):
        for item in described:
            if isinstance(item, (list, tuple)) and len(item) >= 2 and item[0] == "max.message.bytes":
                try:
                    return int(str(item[1]))
                except ValueError:
                    return None
            found = _find_max_message_bytes(item)
            if found is not None:
                return found
    else:
        resources = getattr(described, "resources", None)
        if resources is not None:
            return _find_max_message_bytes(resources)
    return None
