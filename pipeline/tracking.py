"""Know when a set of posts has been processed: indexed in Elasticsearch or dead-lettered.

Counting outcomes per post key is exact on any broker; end offsets are not (Tansu can report them
one batch short), so they are never used to decide "caught up".
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError
from kafka import KafkaConsumer, TopicPartition
from pydantic import BaseModel

from pipeline.kafka.config import kafka_python_config
from pipeline.settings import Settings
from schemas.posts import DeadLetter


class Tally(BaseModel):
    expected: int
    indexed: int
    dead_lettered: int
    dead_letters: list[DeadLetter] = []

    @property
    def done(self) -> bool:
        return self.indexed + self.dead_lettered >= self.expected


def count_indexed(es: Elasticsearch, alias: str, keys: Iterable[str], since: datetime | None = None) -> int:
    """Documents with these ids, processed at or after ``since`` (an earlier run's copies don't count)."""
    keys = list(keys)
    try:
        es.indices.refresh(index=alias)
    except NotFoundError:
        return 0
    total = 0
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        query: dict[str, Any] = {"ids": {"values": chunk}}
        if since is not None:
            query = {"bool": {"filter": [query, {"range": {"processed_at": {"gte": since.isoformat()}}}]}}
        total += int(es.count(index=alias, query=query)["count"])
    return total


def dead_letter_key(letter: DeadLetter) -> str | None:
    """The post key of a dead letter: from its message key, else from the original JSON if readable."""
    if letter.original_key:
        return base64.b64decode(letter.original_key).decode("utf-8", errors="replace")
    try:
        data = json.loads(base64.b64decode(letter.original))
        return f"{data['platform']}:{data['id']}"
    except Exception:
        return None


class DeadLetterReader:
    """Reads the dead-letter topic from the beginning, incrementally, without a consumer group."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.topic = settings.topic_dead_letter
        self.consumer = KafkaConsumer(
            **kafka_python_config(settings, bootstrap),
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=500,
        )
        self._assigned = False
        self.letters: list[DeadLetter] = []

    def _assign(self) -> bool:
        partitions = self.consumer.partitions_for_topic(self.topic)
        if not partitions:
            return False
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self._assigned = True
        return True

    def poll(self) -> list[DeadLetter]:
        if not self._assigned and not self._assign():
            return self.letters
        for records in self.consumer.poll(timeout_ms=500, max_records=1000).values():
            for record in records:
                self.letters.append(DeadLetter.model_validate_json(record.value))
        return self.letters

    def read_all(self, idle: float = 2.0) -> list[DeadLetter]:
        """Every letter so far: polls until nothing new came for ``idle`` seconds (the embedded broker's
        end offsets can lag by a batch, so they cannot say when the end is reached)."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle:
            before = len(self.letters)
            if len(self.poll()) > before:
                quiet_since = time.monotonic()
        return self.letters

    def close(self) -> None:
        self.consumer.close()


def select_letters(
    letters: Iterable[DeadLetter],
    *,
    stages: Collection[str] = (),
    keys: Collection[str] = (),
    grep: str | None = None,
    since: datetime | None = None,
) -> list[DeadLetter]:
    """The letters matching every filter given (stage, post key, reason substring, failed since)."""
    needle = grep.casefold() if grep else None
    return [
        dl
        for dl in letters
        if (not stages or dl.stage in stages)
        and (not keys or dead_letter_key(dl) in keys)
        and (needle is None or needle in dl.reason.casefold())
        and (since is None or _aware(dl.failed_at) >= since)
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def wait_processed(
    settings: Settings,
    bootstrap: str,
    es: Elasticsearch,
    keys: Iterable[str],
    timeout: float = 600.0,
    on_progress: Callable[[Tally], None] | None = None,
    since: datetime | None = None,
) -> Tally:
    """Poll until every key is indexed or dead-lettered (or ``timeout`` passes; the tally says)."""
    wanted = set(keys)
    reader = DeadLetterReader(settings, bootstrap)
    deadline = time.monotonic() + timeout
    try:
        while True:
            letters = [dl for dl in reader.poll() if dead_letter_key(dl) in wanted]
            dead_keys = {dead_letter_key(dl) for dl in letters}
            indexed = count_indexed(es, settings.index_alias, wanted - dead_keys, since)
            tally = Tally(
                expected=len(wanted), indexed=indexed, dead_lettered=len(dead_keys), dead_letters=letters
            )
            if on_progress:
                on_progress(tally)
            if tally.done or time.monotonic() > deadline:
                return tally
            time.sleep(0.5)
    finally:
        reader.close()
