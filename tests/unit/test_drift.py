"""Topics that differ from the settings are named, with the way to change them."""

from __future__ import annotations

from pipeline.drift import topic_drift
from pipeline.kafka.topics import TopicInfo
from pipeline.settings import Settings


def test_partitions_and_replication_that_differ_are_named_with_the_fix() -> None:
    settings = Settings(topic_partitions=12, topic_replication=3)
    found = topic_drift(
        settings,
        [
            TopicInfo(name=settings.topic_raw, partitions=4, replication=3),
            TopicInfo(name=settings.topic_enriched, partitions=12, replication=1),
            TopicInfo(name=settings.topic_topics_input, partitions=1, replication=3),
        ],
        "kafka-1:9092",
    )
    assert [(d.name, d.setting, d.current, d.wanted) for d in found] == [
        (settings.topic_raw, "partitions", 4, 12),
        (settings.topic_enriched, "replication", 1, 3),
    ]
    raw, enriched = found
    assert (
        "kafka-topics.sh --bootstrap-server kafka-1:9092 --alter --topic pantau.posts.raw --partitions 12"
        in (raw.describe())
    )
    assert "kafka-reassign-partitions.sh" in enriched.fix and "PANTAU_TOPIC_REPLICATION=1" in enriched.fix


def test_fewer_partitions_wanted_than_exist_cannot_be_done_in_place() -> None:
    settings = Settings(topic_partitions=2)
    (drift,) = topic_drift(
        settings, [TopicInfo(name=settings.topic_enriched, partitions=4, replication=1)], "k:9"
    )
    assert "PANTAU_TOPIC_PARTITIONS=4" in drift.fix and "cannot take partitions away" in drift.fix


def test_matching_and_missing_topics_say_nothing() -> None:
    settings = Settings()
    topics = [
        TopicInfo(name=settings.topic_raw, partitions=4, replication=1),
        TopicInfo(name=settings.topic_dead_letter, partitions=None, replication=None),
    ]
    assert topic_drift(settings, topics, "k:9") == []


def test_the_worker_says_so_at_start() -> None:
    from pipeline.provision import Provisioned
    from pipeline.sinks.elasticsearch import ClusterFeatures

    settings = Settings(topic_partitions=12)
    topics = [TopicInfo(name=settings.topic_raw, partitions=4, replication=1)]
    provisioned = Provisioned(
        topics=[*topics, TopicInfo(name=settings.topic_topics_input, partitions=1, replication=1)],
        features=ClusterFeatures(version="8.15.3", indonesian_stemmer=True, ilm=True),
        mappings=[],
        drift=topic_drift(settings, topics, "k:9"),
    )
    summary = provisioned.summary(settings).splitlines()
    assert summary[0].endswith(
        f"{settings.topic_raw} (4 partitions), {settings.topic_topics_input} (1 partition)"
    )
    assert summary[-1].startswith(
        f"warning: topic {settings.topic_raw}: partitions is 4, the settings say 12; "
    )
