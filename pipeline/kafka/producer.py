"""Stream a file of raw posts into the raw topic: valid lines are sent, invalid ones reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kafka import KafkaProducer
from pydantic import BaseModel

from pipeline.kafka.config import kafka_python_config
from pipeline.settings import Settings
from pipeline.sources.files import read_records
from pipeline.validation import Rejected, check_message_size, validate_raw_post


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
) -> ProduceReport:
    report = ProduceReport()
    producer = make_producer(settings, bootstrap)
    futures = []
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
                    report.keys.append(post.key)
            if on_record:
                on_record()
        producer.flush()
        for future in futures:
            future.get(timeout=60)  # raises if the broker never acknowledged
        report.sent = len(futures)
    finally:
        producer.close()
    return report
