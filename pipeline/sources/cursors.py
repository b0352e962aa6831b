"""Where each connector stream resumes: a compacted Kafka topic (any machine can resume) and a copy in the
run directory (the embedded broker forgets its topics when it restarts)."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.producer.future import FutureRecordMetadata
from pydantic import AwareDatetime, BaseModel, ValidationError

from pipeline.kafka.config import kafka_python_config
from pipeline.settings import Settings
from pipeline.sources.connector import Cursor, SourceError

log = logging.getLogger("pantau.ingest")

READ_TIMEOUT = 60.0


class SavedCursor(BaseModel):
    """A cursor message's value (key: ``<connector>:<stream key>``)."""

    cursor: dict[str, Any]
    saved_at: AwareDatetime


class Marker(BaseModel):
    marker: str


def cursor_dir(settings: Settings) -> Path:
    return settings.run_dir / "ingest"


class CursorStore:
    """Load once at start, save after every acknowledged page.

    The topic is read to its end by sending a marker and consuming until that marker comes back: the one
    partition keeps order, so every cursor written before it has been read. ``end_offsets`` is not used;
    on a compacted topic offsets have gaps, and a broker may report an end it has not made readable yet.
    """

    def __init__(self, settings: Settings, bootstrap: str, connector: str, producer: KafkaProducer) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.connector = connector
        self.producer = producer
        self.topic = settings.topic_ingest_cursors
        self.file = cursor_dir(settings) / f"{connector}.cursors.json"
        self.saved: dict[str, SavedCursor] = {}

    def load(self) -> dict[str, Cursor]:
        from_kafka = self._read_topic()
        from_file = self._read_file()
        merged: dict[str, SavedCursor] = {}
        for key in {*from_kafka, *from_file}:
            candidates = [c for c in (from_kafka.get(key), from_file.get(key)) if c is not None]
            merged[key] = max(candidates, key=lambda c: c.saved_at)
        restored = [k for k in merged if k not in from_kafka or from_kafka[k].saved_at < merged[k].saved_at]
        for key in restored:  # the broker lost them (embedded restart): write them back
            self._send(key, merged[key])
        if restored:
            self.producer.flush()
            log.info("%s: %d cursors restored from %s", self.connector, len(restored), self.file)
        self.saved = merged
        return {key: saved.cursor for key, saved in merged.items()}

    def save(self, stream_key: str, cursor: Cursor) -> None:
        """Call only after the broker acknowledged every post the cursor covers."""
        saved = SavedCursor(cursor=cursor, saved_at=datetime.now(UTC))
        self._send(stream_key, saved).get(timeout=60)
        self.saved[stream_key] = saved
        self._write_file()

    def _send(self, stream_key: str, saved: SavedCursor) -> FutureRecordMetadata:
        key = f"{self.connector}:{stream_key}".encode()
        return self.producer.send(self.topic, key=key, value=saved.model_dump_json().encode())

    def _read_topic(self) -> dict[str, SavedCursor]:
        nonce = uuid.uuid4().hex
        marker_key = f"marker:{self.connector}".encode()
        self.producer.send(
            self.topic, key=marker_key, value=Marker(marker=nonce).model_dump_json().encode()
        ).get(timeout=60)
        consumer = KafkaConsumer(
            **kafka_python_config(self.settings, self.bootstrap), enable_auto_commit=False, group_id=None
        )
        prefix = f"{self.connector}:".encode()
        found: dict[str, SavedCursor] = {}
        try:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            consumer.seek_to_beginning(partition)
            deadline = time.monotonic() + READ_TIMEOUT
            while time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        if record.key == marker_key:
                            if _marker(record.value) == nonce:
                                return found
                            continue
                        if not record.key or not record.key.startswith(prefix):
                            continue
                        stream_key = record.key[len(prefix) :].decode()
                        if record.value is None:
                            found.pop(stream_key, None)
                            continue
                        try:
                            found[stream_key] = SavedCursor.model_validate_json(record.value)
                        except ValidationError:
                            log.warning("%s: unreadable cursor for %s skipped", self.connector, stream_key)
        finally:
            consumer.close()
        raise SourceError(
            f"{self.connector}: {self.topic} was not read to its end within {READ_TIMEOUT:.0f} s"
        )

    def _read_file(self) -> dict[str, SavedCursor]:
        try:
            raw = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("%s: %s unreadable (%s): ignored", self.connector, self.file, exc)
            return {}
        found = {}
        for key, value in raw.items() if isinstance(raw, dict) else ():
            try:
                found[key] = SavedCursor.model_validate(value)
            except ValidationError:
                continue
        return found

    def _write_file(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.file.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(
            json.dumps({k: v.model_dump(mode="json") for k, v in sorted(self.saved.items())}, indent=1),
            encoding="utf-8",
        )
        temporary.replace(self.file)


def _marker(value: bytes | None) -> str | None:
    try:
        return Marker.model_validate_json(value or b"").marker
    except ValidationError:
        return None
