"""Stream a file of raw posts into the raw topic (valid lines are sent, invalid ones reported), and
send dead letters back to the topics they came from."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata
from pydantic import BaseModel

from pipeline.kafka.config import kafka_python_config
from pipeline.settings import Settings
from pipeline.sources.files import read_records
from pipeline.validation import Rejected, check_message_size, validate_raw_post
from schemas.posts import DeadLetter

CONFIRM_EVERY = 5_000
"""Sends confirmed at a time: a file's pending deliveries are held only this far (a 5M-post backfill held
every future to the end, about 0.6 KB each)."""


class InvalidLine(BaseModel):
    line: int
    reason: str


class ProduceReport(BaseModel):
    sent: int = 0
    invalid: list[InvalidLine] = []
    keys: list[str] = []


def make_producer(settings: Settings, bootstrap: str) -> KafkaProducer:
    # At-least-once: acks from all in-sync replicas, retries, no idempotence (Tansu rejects InitProducerId).
    return KafkaProducer(
        **kafka_python_config(settings, bootstrap),
        acks="all",
        enable_idempotence=False,
        retries=10,
        linger_ms=20,
        max_in_flight_requests_per_connection=1,
    )


def produce_file(
    settings: Settings,
    bootstrap: str,
    path: Path,
    on_record: Callable[[], None] | None = None,
    keep_keys: bool = False,
) -> ProduceReport:
    """Send every valid line; ``keep_keys`` lists the posts' keys in the report (for a caller that waits
    for them, like the demo)."""
    report = ProduceReport()
    producer = make_producer(settings, bootstrap)
    futures: list[FutureRecordMetadata] = []

    def confirm() -> None:
        for future in futures:
            future.get(timeout=60)  # raises if the broker never acknowledged
        report.sent += len(futures)
        futures.clear()

    try:
        for record in read_records(path):
            if record.data is None:
                report.invalid.append(InvalidLine(line=record.line, reason=record.error or "unreadable"))
            else:
                try:
                    post = validate_raw_post(record.data)
                    value = post.model_dump_json(exclude_none=True).encode()
                    check_message_size(value)
                except Rejected as exc:
                    report.invalid.append(InvalidLine(line=record.line, reason=exc.reason))
                else:
                    futures.append(producer.send(settings.topic_raw, key=post.key.encode(), value=value))
                    if keep_keys:
                        report.keys.append(post.key)
                    if len(futures) >= CONFIRM_EVERY:
                        confirm()
            if on_record:
                on_record()
        producer.flush()
        confirm()
    finally:
        producer.close()
    return report


class ReplayReport(BaseModel):
    sent: dict[str, int] = {}
    """Messages sent back, per topic."""
    no_source: int = 0
    """Letters that do not say which topic they came from (written by another producer)."""
    truncated: list[DeadLetter] = []
    """Letters that keep only a prefix of their original (it did not fit the topic): not replayable."""


def replay_dead_letters(settings: Settings, bootstrap: str, letters: Iterable[DeadLetter]) -> ReplayReport:
    """Send each letter's original message, byte for byte and with its key, back to its source topic.

    For letters whose cause is gone (Elasticsearch fixed, a model that now reads the text): the pipeline
    processes them as new arrivals, and what still fails comes back as a new letter.
    """
    report = ReplayReport()
    sent: Counter[str] = Counter()
    producer = make_producer(settings, bootstrap)
    futures = []
    try:
        for letter in letters:
            if not letter.source_topic:
                report.no_source += 1
                continue
            if letter.original_truncated or letter.original_key_truncated:
                report.truncated.append(letter)
                continue
            key = base64.b64decode(letter.original_key) if letter.original_key else None
            value = base64.b64decode(letter.original)
            futures.append(producer.send(letter.source_topic, key=key, value=value))
            sent[letter.source_topic] += 1
        producer.flush()
        for future in futures:
            future.get(timeout=60)
    finally:
        producer.close()
    report.sent = dict(sent)
    return report
