"""What a stage reads and returns: consumed records, messages to send, records it gives up on."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.posts import Stage


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka message, as a stage sees it (no Faust types)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @property
    def tp(self) -> tuple[str, int]:
        """Topic and partition (equal to Faust's ``TP`` for the same pair)."""
        return (self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message a stage wants sent; ``value`` None is a tombstone."""

    key: bytes
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Failed:
    """A record the stage could not process: to the dead-letter topic with ``stage`` and ``reason``."""

    record: Record
    stage: Stage
    reason: str
