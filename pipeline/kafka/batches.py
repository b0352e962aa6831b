"""Batches of stream events whose offsets are committed only once the batch is finished.

Faust's ``Stream.take_events`` acknowledges a batch when the consumer loop moves on, and also when the
loop body raised or the worker was stopped in the middle of it, so a batch that was never processed
would have its offsets committed. While its batch runs, each message here carries one extra reference,
which makes that acknowledgement a no-op unless the batch finished: an unfinished batch stays
uncommitted and is read again after a restart or rebalance. That is also why the app can stop without
waiting for streams to drain (``stream_wait_empty=False``): a batch cut short by a stop is not lost, and a
stop never waits on a batch that is waiting out an Elasticsearch outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import faust
from faust.types import EventT

from schemas.posts import Stage

log = logging.getLogger("pantau.worker")

Handler = Callable[[Sequence[EventT]], Awaitable[None]]
OnFailure = Callable[[Sequence[EventT], Exception], Awaitable[None]]
DeadLetterSender = Callable[[EventT, Stage, str], Awaitable[Awaitable[Any]]]
"""Sends one event's message to the dead-letter topic with a stage and a reason; awaiting the result waits
for the broker's acknowledgement."""

__all__ = ["DeadLetterSender", "Handler", "OnFailure", "dead_lettering", "process_batches", "run_batch"]


def dead_lettering(dead_letter: DeadLetterSender, stage: Stage) -> OnFailure:
    """The ``on_failure`` that keeps every message of a failed batch, with the error as the reason."""

    async def on_failure(events: Sequence[EventT], exc: Exception) -> None:
        reason = f"unexpected {type(exc).__name__}: {exc}"
        await asyncio.gather(*[await dead_letter(event, stage, reason) for event in events])

    return on_failure


async def process_batches(
    stream: faust.StreamT[Any], size: int, within: float, handle: Handler, on_failure: OnFailure
) -> None:
    """Feed ``stream`` to ``handle`` in batches of up to ``size`` events (waiting at most ``within`` s)."""
    async for events in cast(faust.Stream[Any], stream).take_events(size, within=within):
        await run_batch(events, handle, on_failure)


async def run_batch(
    events: Sequence[EventT],
    handle: Handler,
    on_failure: OnFailure,
    retry_first: float = 1.0,
    retry_max: float = 30.0,
) -> None:
    """``handle(events)``; if it raises, ``on_failure(events, error)`` (the dead-letter topic) instead.

    The batch is released for acknowledgement only when one of the two returned. ``on_failure`` is
    retried with back-off (up to ``retry_max`` s apart) for as long as it fails: giving up would leave
    the batch held and the partition's commits stuck behind it. Cancellation (the worker stopping)
    propagates with the batch still held, so it is read again after the restart.
    """
    for event in events:  # no await before this: a stop cannot slip in between
        event.message.incref()
    try:
        await handle(events)
    except Exception as exc:
        log.exception("a batch of %d events failed; dead-lettering all of them", len(events))
        delay = retry_first
        while True:
            try:
                await on_failure(events, exc)
                break
            except Exception:
                first = events[0].message
                log.exception(
                    "could not dead-letter the failed batch from %s[%d]@%d; trying again in %.0f s",
                    first.topic,
                    first.partition,
                    first.offset,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, retry_max)
    for event in events:
        event.message.decref()
