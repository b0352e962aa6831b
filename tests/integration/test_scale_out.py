"""Scale-out on the real stack: workers join and leave the group while posts stream and the topics agent's
tables have changelogs, and the worker that was already running goes on."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import NewTopic

from pipeline.bench.synthetic import synthetic_day
from pipeline.embedded.stack import wait_for_worker_log
from pipeline.kafka.config import kafka_python_config
from pipeline.kafka.groups import describe_group
from pipeline.kafka.recovery import fetched_ends
from pipeline.stages.enrich import discoverable
from pipeline.tracking import Tally, wait_processed
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 22, tzinfo=UTC)
"""After the other tests' posts and before test_topics' day (their posts leave the 24 h window)."""
LEAVING_POSTS = 20
"""Posts sent after the kill, while the group waits out the session timeout to drop the killed worker."""


def test_changelog_end_is_the_last_record_a_fetch_returns(pipeline: Pipeline) -> None:
    """The embedded broker's ListOffsets ends short of a multi-record batch; Faust's recovery trusted it."""
    settings, bootstrap = pipeline.settings, pipeline.endpoints.kafka
    topic = f"test-end-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**kafka_python_config(settings, bootstrap))
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(**kafka_python_config(settings, bootstrap), acks="all", linger_ms=200)
    first = producer.send(topic, b"alone").get(timeout=30)  # a batch of its own
    futures = [producer.send(topic, b"batched %d" % i) for i in range(5)]  # one batch, flushed together
    producer.flush()
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close()
    assert offsets == list(range(first.offset + 1, first.offset + 6))

    listed, fetched = _ends(bootstrap, topic)
    assert fetched == offsets[-1] + 1, (listed, fetched)


def _ends(bootstrap: str, topic: str) -> tuple[int, int]:
    """Partition 0's end as ListOffsets reports it and as a fetch finds it."""

    async def ends() -> tuple[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            listed = (await consumer.end_offsets([TopicPartition(topic, 0)]))[TopicPartition(topic, 0)]
            return listed, (await fetched_ends(consumer, {TP(topic, 0): listed}, 5.0))[TP(topic, 0)]
        finally:
            await consumer.stop()

    return asyncio.run(ends())


def _posts(start: datetime) -> list[dict[str, Any]]:
    """A synthetic day (three planted stories in chatter, so topics form) under keys of this run."""
    run = uuid.uuid4().hex[:8]
    return [
        {
            "id": f"scale-{run}-{post.key.removeprefix('x:')}",
            "platform": "x",
            "text": post.text,
            "created_at": post.created_at.isoformat(),
        }
        for post in synthetic_day(seed=1, start=start, chatter=100)
    ]


def _topics_updated_to(pipeline: Pipeline) -> datetime | None:
    """The stream time of the topics agent's latest update, from the topics index."""
    index = pipeline.settings.topics_index
    if not pipeline.es.indices.exists(index=index):
        return None
    pipeline.es.indices.refresh(index=index)
    hits = pipeline.es.search(index=index, size=1, sort=[{"updated_at": "desc"}])["hits"]["hits"]
    return datetime.fromisoformat(hits[0]["_source"]["updated_at"]) if hits else None


def _wait_for_update(pipeline: Pipeline, clock: datetime, timeout: float = 120) -> None:
    """Until the topics agent has published an update that saw every post up to ``clock`` (stream time)."""
    deadline = time.monotonic() + timeout
    while (updated := _topics_updated_to(pipeline)) is None or updated < clock:
        if time.monotonic() > deadline:
            raise AssertionError(f"no topic update reached {clock.isoformat()} in {timeout:.0f} s")
        time.sleep(0.5)


def _last_discoverable(pipeline: Pipeline, keys: list[str]) -> datetime:
    """The stream time (``@timestamp``, the post's ``created_at``) of the latest of ``keys`` that topic
    discovery sees: a citizen's public-service post (chatter and agencies' own replies never reach the topics
    agent, so they do not move its clock)."""
    pipeline.es.indices.refresh(index=pipeline.settings.index_alias)
    hits = pipeline.es.search(
        index=pipeline.settings.index_alias, query={"ids": {"values": keys}}, size=len(keys)
    )["hits"]["hits"]
    seen = [
        datetime.fromisoformat(hit["_source"]["@timestamp"])
        for hit in hits
        if discoverable(hit["_source"]["is_public_service"], hit["_source"].get("official_account"))
    ]
    assert seen, "none of the posts is a public-service post: topic discovery would see nothing"
    return max(seen)


def _end_with_a_batch(pipeline: Pipeline, changelog: str) -> None:
    """Make ``changelog`` end with a batch of several records, as a topics-state save (one record per topic)
    often does, and which the embedded broker's ListOffsets ends short of: its last record is written again,
    twice in one batch, which changes no table entry."""
    settings, bootstrap = pipeline.settings, pipeline.endpoints.kafka
    consumer = KafkaConsumer(**kafka_python_config(settings, bootstrap), enable_auto_commit=False)
    partition = KafkaTopicPartition(changelog, 0)
    end = _ends(bootstrap, changelog)[1]
    assert end > 0, f"{changelog} is empty: the topics agent saved no state"
    consumer.assign([partition])
    consumer.seek(partition, end - 1)
    records = consumer.poll(timeout_ms=10_000).get(partition, [])
    consumer.close()
    last = records[-1]
    producer = KafkaProducer(**kafka_python_config(settings, bootstrap), acks="all", linger_ms=200)
    for _ in range(2):
        producer.send(changelog, key=last.key, value=last.value, headers=last.headers, partition=0)
    producer.flush()
    producer.close()


def _diagnosis(pipeline: Pipeline, tally: Tally, keys: list[str], log: Path, start: int, tmp: Path) -> str:
    """What a failure needs to be told apart: posts lost (the group's lag is nought) or a partition no
    member reads (lag left on it), with the missing keys and the workers' last lines."""
    settings = pipeline.settings
    pipeline.es.indices.refresh(index=settings.index_alias)
    found = pipeline.es.search(index=settings.index_alias, query={"ids": {"values": keys}}, size=len(keys))
    missing = sorted(set(keys) - {hit["_id"] for hit in found["hits"]["hits"]})
    group = describe_group(settings, pipeline.endpoints.kafka)
    lagging = [p for p in group.partitions if p.lag]
    logs = {"original": log.read_text(errors="replace")[start:]}
    (tmp / "original.kept").write_text(
        logs["original"]
    )  # the worker's own log is rewritten at its next start
    logs |= {p.stem: p.read_text(errors="replace") for p in sorted(tmp.glob("*.log"))}
    noise = ("KafkaConnection", "KafkaTCPTransport", "metadata", "Bootstrap", "Coordinator for", " http://")
    kept = {
        name: "\n".join(x for x in text.splitlines() if not any(n in x for n in noise))
        for name, text in logs.items()
    }
    tails = "\n".join(f"--- {name}\n{text[-3000:]}" for name, text in kept.items())
    return f"{tally}\nmissing {missing}\nmembers {len(group.members)}, lag {lagging}\n{tails}"


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole
        )


def test_workers_join_and_leave_while_posts_stream(pipeline: Pipeline, tmp_path: Path) -> None:
    """Two phases, as a user scales out: an idle stream whose topics state was saved last (the case that
    stopped the original worker with ConsistencyError), then posts streaming while a worker is killed."""
    settings = pipeline.settings
    original = pipeline.stack.worker()
    assert original is not None
    log = Path(original.log)
    log_start = log.stat().st_size
    # dated after whatever the stream clock has seen, so the posts are in the topics window in any test order
    updated = _topics_updated_to(pipeline)
    posts = _posts(max(DAY, updated + timedelta(hours=1)) if updated else DAY)
    keys = [f"{p['platform']}:{p['id']}" for p in posts]
    head, tail = posts[: len(posts) * 2 // 3], posts[len(posts) * 2 // 3 :]
    for post in head:
        pipeline.send_post(post)
    head_keys = keys[: len(head)]
    assert wait_processed(settings, pipeline.endpoints.kafka, pipeline.es, head_keys, 180).done
    _wait_for_update(pipeline, _last_discoverable(pipeline, head_keys))
    _end_with_a_batch(pipeline, f"{settings.app_id}-topic-state-changelog")

    env = os.environ | {
        "PANTAU_KAFKA_BOOTSTRAP": pipeline.endpoints.kafka,
        "PANTAU_ES_URL": pipeline.endpoints.elasticsearch,
        "PYTHONUNBUFFERED": "1",
    }
    leaving, stop_streaming = threading.Event(), threading.Event()

    def stream() -> None:
        """The rest of the day, paced; the last posts while the killed worker leaves the group."""
        for i, post in enumerate(tail):
            if i == len(tail) - LEAVING_POSTS:
                leaving.wait()
            if stop_streaming.is_set():
                return
            pipeline.send_post(post)
            time.sleep(0.2)

    streamer = threading.Thread(target=stream)
    extra: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("second", "third"):
            extra.append(_start_worker(env, tmp_path / f"{name}.log"))
        for process, name in zip(extra, ("second", "third"), strict=True):
            wait_for_worker_log(tmp_path / f"{name}.log", pid=process.pid, timeout=180)
        second, third = extra
        time.sleep(3)  # both in the group, the original has read the changelogs it kept
        second.send_signal(signal.SIGTERM)  # leaves while the stream is idle
        second.wait(60)
        streamer.start()
        time.sleep(5)  # posts streaming through the rebalance the leave started
        os.killpg(third.pid, signal.SIGKILL)
        third.wait(10)
        leaving.set()
        streamer.join(timeout=120)
        assert not streamer.is_alive(), "streaming did not finish"
        assert original.alive(), log.read_text(errors="replace")[log_start:][-3000:]

        tally = wait_processed(settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=180)
        assert tally.indexed == len(keys), _diagnosis(pipeline, tally, keys, log, log_start, tmp_path)
        _wait_for_update(pipeline, _last_discoverable(pipeline, keys))
        assert pipeline.es.count(index=settings.topics_index)["count"] > 0
        since = log.read_text(errors="replace")[log_start:]
        assert original.alive(), since[-3000:]
        assert "ConsistencyError" not in since and "Crashed" not in since, since[-3000:]
    finally:
        stop_streaming.set()
        leaving.set()
        if streamer.is_alive():
            streamer.join(timeout=30)
        for process in extra:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
