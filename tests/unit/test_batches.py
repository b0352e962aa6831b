"""A batch's offsets become committable only when it finished: checked on Faust's own message refcounts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import EventT
from faust.types.tuples import Message

from pipeline.kafka.batches import run_batch


def _events(n: int) -> list[Any]:
    events = []
    for offset in range(n):
        message = Message("pantau.posts.raw", 0, offset, 0.0, 0, None, b"k", b"v", None)
        message.incref()  # as the conductor does for the one stream that reads the topic
        events.append(SimpleNamespace(message=message))
    return events


def _acked_by_take_events(events: Sequence[Any]) -> list[bool]:
    """What ``Stream.take_events`` does when the loop moves on (also after a failure): ack each event."""
    for event in events:
        event.message.ack(None)
    return [event.message.acked for event in events]


async def _ok(events: Sequence[EventT]) -> None:
    await asyncio.sleep(0)


async def _boom(events: Sequence[EventT]) -> None:
    raise RuntimeError("model crashed")


def test_a_finished_batch_is_acknowledged() -> None:
    events = _events(3)
    handled: list[int] = []

    async def handle(batch: Sequence[EventT]) -> None:
        handled.extend(e.message.offset for e in batch)

    asyncio.run(run_batch(events, handle, _boom))
    assert handled == [0, 1, 2]
    assert _acked_by_take_events(events) == [True, True, True]


def test_a_failed_batch_is_dead_lettered_then_acknowledged() -> None:
    events = _events(2)
    letters: list[tuple[int, str]] = []

    async def dead_letter(batch: Sequence[EventT], exc: Exception) -> None:
        letters.extend((r.offset, str(exc)) for r in batch)

    asyncio.run(run_batch(events, _boom, dead_letter))
    assert letters == [(0, "model crashed"), (1, "model crashed")]
    assert _acked_by_take_events(events) == [True, True]


def test_dead_lettering_is_retried_until_the_broker_takes_it() -> None:
    events = _events(2)
    attempts: list[int] = []

    async def broker_back_on_third_try(batch: Sequence[EventT], exc: Exception) -> None:
        attempts.append(len(batch))
        if len(attempts) < 3:
            raise ConnectionError("broker unreachable")

    asyncio.run(run_batch(events, _boom, broker_back_on_third_try, retry_first=0.01))
    assert attempts == [2, 2, 2]
    assert _acked_by_take_events(events) == [True, True]


def test_a_batch_that_could_not_be_dead_lettered_before_a_stop_stays_unacknowledged() -> None:
    events = _events(2)

    async def broker_down(batch: Sequence[EventT], exc: Exception) -> None:
        raise ConnectionError("broker unreachable")

    async def stopped() -> None:
        task = asyncio.create_task(run_batch(events, _boom, broker_down, retry_first=0.01))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(stopped())
    assert _acked_by_take_events(events) == [False, False]


def test_a_batch_stopped_midway_stays_unacknowledged() -> None:
    events = _events(2)

    async def stopped() -> None:
        task = asyncio.create_task(run_batch(events, lambda _: asyncio.sleep(10), _boom))
        await asyncio.sleep(0.01)
        task.cancel()  # the worker shutting down in the middle of the batch
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(stopped())
    assert _acked_by_take_events(events) == [False, False]
