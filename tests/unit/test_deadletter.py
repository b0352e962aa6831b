"""Dead letters always fit the topic, and are sent until the broker takes them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from pipeline.health import HealthReporter, read_health
from pipeline.kafka.deadletter import DeadLetterer, build_letter
from pipeline.stages.records import Failed, Record
from schemas.posts import DeadLetter


def _record(value: bytes, key: bytes | None = b"x:1") -> Record:
    return Record("pantau.posts.raw", 2, 41, key, value)


def test_a_letter_keeps_its_original_whole_when_it_fits() -> None:
    value = b'{"id": "1"}' * 300
    key, letter = build_letter(_record(value), "decode", "why", limit=100_000)
    parsed = DeadLetter.model_validate_json(letter)
    assert key == b"x:1" and base64.b64decode(parsed.original) == value
    assert not parsed.original_truncated and parsed.original_size is None
    assert (parsed.source_topic, parsed.source_partition, parsed.source_offset) == ("pantau.posts.raw", 2, 41)


def test_an_original_too_large_keeps_a_prefix_its_size_and_hash_within_the_limit() -> None:
    value = bytes(range(256)) * 10_000  # 2.56 MB of binary
    for limit in (5_000, 1_000_000):
        key, letter = build_letter(_record(value, key=b"k" * 5000), "decode", "r" * 50_000, limit=limit)
        parsed = DeadLetter.model_validate_json(letter)
        assert len(letter) + len(key or b"") <= limit
        assert parsed.original_truncated and parsed.original_key_truncated
        assert parsed.original_size == len(value)
        assert parsed.original_sha256 == hashlib.sha256(value).hexdigest()
        assert value.startswith(base64.b64decode(parsed.original))
        assert len(parsed.reason) < 5000
    assert len(base64.b64decode(parsed.original)) > 700_000  # a big limit keeps most of it


class Broker:
    """Refuses the first ``down`` sends as unreachable, and anything over ``max_bytes`` as too large."""

    def __init__(self, down: int = 0, max_bytes: int = 10**9) -> None:
        self.down = down
        self.max_bytes = max_bytes
        self.taken: list[bytes] = []
        self.tries = 0

    async def send(self, key: bytes | None, value: bytes) -> Any:
        self.tries += 1
        if self.tries <= self.down:
            raise KafkaConnectionError("broker unreachable")
        if len(value) > self.max_bytes:
            raise MessageSizeTooLargeError("too large")
        self.taken.append(value)
        return asyncio.sleep(0)


def test_a_letter_the_broker_refuses_as_too_large_is_cut_until_it_fits() -> None:
    broker = Broker(max_bytes=300_000)
    letters = DeadLetterer(broker.send, "dead", limit=2_000_000, backoff_first=0.001)
    asyncio.run(letters.deliver([Failed(_record(b"x" * 1_500_000), "decode", "too big")]))
    (taken,) = broker.taken
    assert len(taken) <= 300_000 and DeadLetter.model_validate_json(taken).original_truncated


def test_while_the_topic_refuses_letters_the_worker_waits_and_says_why(tmp_path: Any) -> None:
    broker = Broker(down=3)
    health = HealthReporter(tmp_path)
    seen: list[list[str]] = []

    async def watch() -> None:
        letters = DeadLetterer(broker.send, "dead", limit=100_000, backoff_first=0.05, health=health)
        task = asyncio.create_task(letters.deliver([Failed(_record(b"{}"), "validate", "bad")]))
        while not task.done():
            seen.append([p.reason for h in read_health(tmp_path) for p in h.problems.values()])
            await asyncio.sleep(0.01)
        await task

    asyncio.run(watch())
    assert len(broker.taken) == 1 and broker.tries == 4
    assert any(reasons and "broker unreachable" in reasons[0] for reasons in seen)
    assert [h.problems for h in read_health(tmp_path)] == [{}]  # cleared once the letter went through
