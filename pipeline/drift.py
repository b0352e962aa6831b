"""Where existing topics and indices differ from the settings, and how to change them.

Partitions, replication and shards are fixed when a topic or index is created: the worker creates what
is missing and never changes what exists. A setting changed afterwards (``PANTAU_TOPIC_PARTITIONS=12`` on
topics created with 4) would otherwise be ignored without a word, so the worker says so at start and
``pantau status`` says so every time, with the command that makes the cluster match.
"""

from __future__ import annotations

import json
from typing import Any

from elasticsearch import Elasticsearch
from pydantic import BaseModel

from pipeline.kafka.topics import TopicInfo, pipeline_topics
from pipeline.settings import Settings


class Drift(BaseModel):
    kind: str
    """``topic`` or ``index``."""
    name: str
    setting: str
    current: int
    wanted: int
    fix: str

    def describe(self) -> str:
        said = f"{self.setting} is {self.current}, the settings say {self.wanted}"
        return f"{self.kind} {self.name}: {said}; {self.fix}"


def topic_drift(settings: Settings, topics: list[TopicInfo], bootstrap: str) -> list[Drift]:
    wanted = pipeline_topics(settings)
    found: list[Drift] = []
    for topic in topics:
        want = wanted.get(topic.name)
        if want is not None and topic.partitions is not None and topic.partitions != want:
            found.append(
                Drift(
                    kind="topic",
                    name=topic.name,
                    setting="partitions",
                    current=topic.partitions,
                    wanted=want,
                    fix=_partitions_fix(settings, topic, want, bootstrap),
                )
            )
        if topic.replication is not None and topic.replication != settings.topic_replication:
            found.append(
                Drift(
                    kind="topic",
                    name=topic.name,
                    setting="replication",
                    current=topic.replication,
                    wanted=settings.topic_replication,
                    fix="Kafka changes a topic's replicas only by reassignment: "
                    f"kafka-reassign-partitions.sh --bootstrap-server {bootstrap} "
                    "--reassignment-json-file plan.json --execute, with a plan "
                    f"listing {settings.topic_replication} brokers per partition; or set "
                    f"PANTAU_TOPIC_REPLICATION={topic.replication}",
                )
            )
    return found


def _partitions_fix(settings: Settings, topic: TopicInfo, want: int, bootstrap: str) -> str:
    current = topic.partitions or 0
    if topic.name == settings.topic_topics_input:
        return "topic discovery needs exactly one partition (one owner of the topic ids): recreate the topic"
    if want < current:
        return (
            f"Kafka cannot take partitions away: set PANTAU_TOPIC_PARTITIONS={current}, or delete and "
            "recreate the topic (its messages are lost)"
        )
    pair = {
        settings.topic_enriched: settings.topic_assignments,
        settings.topic_assignments: settings.topic_enriched,
    }
    together = f" (and the same for {pair[topic.name]}: the two keep one count)" if topic.name in pair else ""
    return (
        f"kafka-topics.sh --bootstrap-server {bootstrap} --alter --topic {topic.name} --partitions {want}"
        f"{together}; a key's partition changes with the count, so stop the workers and let the lag reach 0 "
        "first"
    )


def index_drift(settings: Settings, es: Elasticsearch) -> list[Drift]:
    """Shards and replicas of the existing posts indices and the topics index."""
    found: list[Drift] = []
    for pattern, shards in (
        (f"{settings.index_prefix}-*", settings.index_shards),
        (settings.topics_index, None),
    ):
        body: dict[str, Any] = es.indices.get_settings(
            index=pattern, ignore_unavailable=True, allow_no_indices=True
        ).body
        for index, entry in sorted(body.items()):
            current = entry.get("settings", {}).get("index", {})
            replicas = int(current.get("number_of_replicas", settings.index_replicas))
            if replicas != settings.index_replicas:
                found.append(
                    Drift(
                        kind="index",
                        name=index,
                        setting="replicas",
                        current=replicas,
                        wanted=settings.index_replicas,
                        fix=f"PUT {index}/_settings "
                        + json.dumps({"index": {"number_of_replicas": settings.index_replicas}}),
                    )
                )
            count = int(current.get("number_of_shards", shards or 1))
            if shards is not None and count != shards:
                found.append(
                    Drift(
                        kind="index",
                        name=index,
                        setting="shards",
                        current=count,
                        wanted=shards,
                        fix="shards are fixed when an index is created: months created from now on get "
                        f"{shards}; for this one use the _split or _shrink API, or reindex it",
                    )
                )
    return found
