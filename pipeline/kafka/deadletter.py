"""Dead letters that always fit the topic, sent until the broker takes them.

A dead letter keeps the original message (base64) so it can be replayed. An original too large for the
dead-letter topic keeps only a prefix, with its size and SHA-256, and can no longer be replayed; a letter
the broker still refuses as too large is cut further. Any other refusal (broker down, topic missing,
timeouts) is retried with back-off for as long as it lasts: the agent stops consuming meanwhile, says why
in the health file, and never acknowledges a message that was neither processed nor dead-lettered.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline import metrics
from pipeline.health import HealthReporter
from pipeline.stages.records import Failed, Record
from schemas.posts import DeadLetter, Stage

log = logging.getLogger("pantau.worker")

Send = Callable[[bytes | None, bytes], Awaitable[Awaitable[Any]]]
"""Sends key and value to the dead-letter topic; awaiting the result waits for the broker's ack."""

RECORD_OVERHEAD = 1024
"""Bytes a record batch adds around one message (headers, lengths, CRC), with room to spare."""
MIN_LETTER_BYTES = 4096
"""The smallest limit a letter is cut to: room for the metadata and the reason alone."""
MAX_REASON_CHARS = 4000
MAX_KEY_BYTES = 1024
"""A key longer than this is kept as a prefix (post keys are at most ~270 bytes; longer is hostile)."""
SHORT_KEY_BYTES = 256
SHORT_REASON_CHARS = 200
"""What key and reason are cut to when a letter must shrink to a small limit."""


def build_letter(record: Record, stage: Stage, reason: str, limit: int) -> tuple[bytes | None, bytes]:
    """The dead-letter message (key, value) for ``record``, at most ``limit`` bytes with its key."""
    value = record.value or b""
    key = record.key
    letter = DeadLetter(
        original=base64.b64encode(value).decode(),
        original_key=base64.b64encode(key).decode() if key is not None else None,
        stage=stage,
        reason=reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS] + " …",
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        failed_at=datetime.now(UTC),
    )
    if key is not None and len(key) > MAX_KEY_BYTES:
        key = key[:MAX_KEY_BYTES]
        letter.original_key = base64.b64encode(key).decode()
        letter.original_key_truncated = True
    encoded = letter.model_dump_json().encode()
    room = limit - RECORD_OVERHEAD - len(key or b"")
    if len(encoded) <= room:
        return key, encoded
    letter.original_truncated = True
    letter.original_size = len(value)
    letter.original_sha256 = hashlib.sha256(value).hexdigest()
    letter.original = ""
    over = len(letter.model_dump_json().encode()) - room
    if over > 0 and key is not None and len(key) > SHORT_KEY_BYTES:  # a small limit: the key gives way
        key = key[:SHORT_KEY_BYTES]
        letter.original_key = base64.b64encode(key).decode()
        letter.original_key_truncated = True
        room = limit - RECORD_OVERHEAD - len(key)
        over = len(letter.model_dump_json().encode()) - room
    if over > 0:  # then the reason
        letter.reason = letter.reason[: max(len(letter.reason) - over - 2, SHORT_REASON_CHARS)] + " …"
        over = len(letter.model_dump_json().encode()) - room
    keep = max(-over, 0) // 4 * 3  # base64: 4 characters per 3 bytes
    letter.original = base64.b64encode(value[:keep]).decode()
    return key, letter.model_dump_json().encode()


def _too_large(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in {"MessageSizeTooLargeError", "RecordTooLargeError"} or "too large" in str(exc).lower()


class DeadLetterer:
    def __init__(
        self,
        send: Send,
        topic: str,
        limit: int,
        backoff_max: float = 30.0,
        backoff_first: float = 0.5,
        health: HealthReporter | None = None,
    ) -> None:
        self.send = send
        self.topic = topic
        self.limit = limit
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.health = health

    async def deliver(self, failures: Sequence[Failed]) -> None:
        """Return once the broker acknowledged a letter for every failure; never raises but cancellation."""
        pending = [(failed, self.limit) for failed in failures]
        for failed in failures:
            log.warning("dead-letter %s [%s] %s", failed.record.where, failed.stage, failed.reason[:500])
        delay = self.backoff_first
        while pending:
            results = await asyncio.gather(
                *(self._send_one(failed, limit) for failed, limit in pending), return_exceptions=True
            )
            retry: list[tuple[Failed, int]] = []
            error: BaseException | None = None
            for (failed, limit), result in zip(pending, results, strict=True):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                if not isinstance(result, BaseException):
                    continue
                if _too_large(result) and limit > MIN_LETTER_BYTES:
                    retry.append((failed, max(limit // 2, MIN_LETTER_BYTES)))  # cut further, at once
                    continue
                retry.append((failed, limit))
                error = result
            pending = retry
            if error is not None:
                reason = f"cannot write to {self.topic}: {type(error).__name__}: {error}"
                log.error("%s; %d letters wait, trying again in %.1f s", reason, len(pending), delay)
                if self.health:
                    self.health.problem("dead-letter", reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
        if self.health:
            self.health.resolved("dead-letter")
        metrics.dead_lettered(failures)

    async def _send_one(self, failed: Failed, limit: int) -> None:
        key, value = build_letter(failed.record, failed.stage, failed.reason, limit)
        await (await self.send(key, value))

    def on_failure(self, stage: Stage) -> Callable[[Sequence[Record], Exception], Awaitable[None]]:
        """For a batch that failed unexpectedly: every record dead-lettered, with the error as the reason."""

        async def dead_letter_all(records: Sequence[Record], exc: Exception) -> None:
            reason = f"unexpected {type(exc).__name__}: {exc}"
            await self.deliver([Failed(record, stage, reason) for record in records])

        return dead_letter_all
