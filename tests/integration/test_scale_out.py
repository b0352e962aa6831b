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
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from pipeline.embedded.stack import wait_for_worker_log
from pipeline.kafka.config import kafka_python_config
from pipeline.kafka.recovery import fetched_ends
from pipeline.topics.synthetic import synthetic_day
from pipeline.tracking import wait_processed
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 22, tzinfo=UTC)
"""After the other tests' posts and before test_topics' day (their posts leave the 24 h window)."""
LEAVING_POSTS = 20
"""Posts sent while the extra workers leave (the group notices the killed one after the session timeout)."""


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

    async def ends() -> tuple[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            listed = (await consumer.end_offsets([TopicPartition(topic, 0)]))[TopicPartition(topic, 0)]
            return listed, (await fetched_ends(consumer, {TP(topic, 0): listed}, 5.0))[TP(topic, 0)]
        finally:
            await consumer.stop()

    listed, fetched = asyncio.run(ends())
    assert fetched == offsets[-1] + 1, (listed, fetched)


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


def test_workers_join_and_leave_while_posts_stream(pipeline: Pipeline, tmp_path: Path) -> None:
    state = pipeline.stack.read_state()
    assert state and state.worker and state.worker.alive()
    original, log = state.worker, Path(state.worker.log)
    log_start = log.stat().st_size
    # dated after whatever the stream clock has seen, so the posts are in the topics window in any test order
    updated = _topics_updated_to(pipeline)
    posts = _posts(max(DAY, updated + timedelta(hours=1)) if updated else DAY)
    keys = [f"{p['platform']}:{p['id']}" for p in posts]
    head, tail = posts[: len(posts) // 2], posts[len(posts) // 2 :]
    for post in head:
        pipeline.send_post(post)
    # the topics agent has written its tables (an update publishes after the state save is sent)
    _wait_for_update(pipeline, datetime.fromisoformat(head[-1]["created_at"]))

    leaving, stop_streaming = threading.Event(), threading.Event()

    def stream() -> None:
        """The rest of the day through the joins; the last posts are held for the leaves."""
        for i, post in enumerate(tail):
            if i == len(tail) - LEAVING_POSTS:
                leaving.wait()
            if stop_streaming.is_set():
                return
            pipeline.send_post(post)
            time.sleep(0.25 if leaving.is_set() else 0.5)

    streamer = threading.Thread(target=stream)
    env = os.environ | {
        "PANTAU_KAFKA_BOOTSTRAP": pipeline.endpoints.kafka,
        "PANTAU_ES_URL": pipeline.endpoints.elasticsearch,
        "PYTHONUNBUFFERED": "1",
    }
    extra: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        streamer.start()
        for name in ("second", "third"):
            worker_log = tmp_path / f"{name}.log"
            with worker_log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "pipeline.cli", "worker"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            extra.append((process, worker_log))
        for process, worker_log in extra:
            wait_for_worker_log(worker_log, pid=process.pid, timeout=180)
        time.sleep(3)  # both in the group, partitions moved and streaming
        (second, _), (third, _) = extra
        leaving.set()
        second.send_signal(signal.SIGTERM)
        os.killpg(third.pid, signal.SIGKILL)
        third.wait(10)
        second.wait(60)
        streamer.join(timeout=120)
        assert not streamer.is_alive(), "streaming did not finish"

        tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=180)
        assert tally.indexed == len(keys), tally
        _wait_for_update(pipeline, datetime.fromisoformat(posts[-1]["created_at"]))
        assert pipeline.es.count(index=pipeline.settings.topics_index)["count"] > 0
        assert original.alive(), log.read_text(errors="replace")[log_start:][-3000:]
        since = log.read_text(errors="replace")[log_start:]
        assert "ConsistencyError" not in since and "Crashed" not in since, since[-3000:]
    finally:
        stop_streaming.set()
        leaving.set()
        streamer.join(timeout=30)
        for process, _ in extra:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
