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
from pydantic import BaseModel, ValidationError

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
        self.unreadable = 0
        """Records on the topic that are not dead letters (a tombstone, another producer's message)."""
        self.complete = False
        """Whether ``read_all`` reached the end of the topic before its timeout."""

    def _assign(self) -> bool:
        partitions = self.consumer.partitions_for_topic(self.topic)
        if not partitions:
            return False
        self.partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self._assigned = True
        return True

    def poll(self) -> list[DeadLetter]:
        if not self._assigned and not self._assign():
            return self.letters
        for records in self.consumer.poll(timeout_ms=500, max_records=1000).values():
            for record in records:
                try:
                    self.letters.append(DeadLetter.model_validate_json(record.value or b""))
                except ValidationError:
                    self.unreadable += 1
        return self.letters

    def read_all(self, idle: float = 2.0, timeout: float = 60.0) -> list[DeadLetter]:
        """Every letter so far. Reads at least up to the end offsets seen at the start, then on until
        nothing new came for ``idle`` seconds: the embedded broker's end offsets can lag by a batch."""
        deadline = time.monotonic() + timeout
        self.complete = False
        while not self._assigned and not self._assign():
            if time.monotonic() > deadline:
                self.complete = True  # no dead-letter topic yet: no letters
                return self.letters
            time.sleep(0.2)
        ends = self.consumer.end_offsets(self.partitions)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            before = len(self.letters) + self.unreadable
            self.poll()
            if len(self.letters) + self.unreadable > before:
                quiet_since = time.monotonic()
            reached = all(self.consumer.position(tp) >= end for tp, end in ends.items())
            if reached and time.monotonic() - quiet_since >= idle:
                self.complete = True
                break
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
    """The letters matching every filter given (stage, post key, reason substring, failed since), oldest
    first (the topic's partitions interleave them otherwise)."""
    needle = grep.casefold() if grep else None
    chosen = [
        dl
        for dl in letters
        if (not stages or dl.stage in stages)
        and (not keys or dead_letter_key(dl) in keys)
        and (needle is None or needle in dl.reason.casefold())
        and (since is None or _aware(dl.failed_at) >= since)
    ]
    return sorted(chosen, key=lambda dl: _aware(dl.failed_at))


def latest_per_message(letters: Iterable[DeadLetter]) -> list[DeadLetter]:
    """One letter per original message (the newest): a message replayed and refused again has several."""
    newest: dict[tuple[str | None, str], DeadLetter] = {}
    for letter in letters:
        seen = newest.get((letter.original_key, letter.original))
        if seen is None or _aware(letter.failed_at) >= _aware(seen.failed_at):
            newest[(letter.original_key, letter.original)] = letter
    return sorted(newest.values(), key=lambda dl: _aware(dl.failed_at))


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
