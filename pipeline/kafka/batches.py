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

from pipeline.stages.records import Record

log = logging.getLogger("pantau.worker")

Handler = Callable[[Sequence[EventT]], Awaitable[None]]
OnFailure = Callable[[Sequence[Record], Exception], Awaitable[None]]
"""Takes every record of a batch whose handler raised (to the dead-letter topic); returns once done."""

__all__ = ["Handler", "OnFailure", "hold", "process_batches", "record_of", "release", "run_batch"]


def record_of(event: EventT) -> Record:
    message = event.message
    return Record(message.topic, message.partition, message.offset, message.key, message.value)


def hold(event: EventT) -> None:
    """One more reference: Faust's own acknowledgement of the event no longer commits it."""
    event.message.incref()


def release(event: EventT) -> None:
    """Drop a reference taken by ``hold``; the last one out acknowledges the event for commit."""
    event.ack()


async def process_batches(
    stream: faust.StreamT[Any], size: int, within: float, handle: Handler, on_failure: OnFailure
) -> None:
    """Feed ``stream`` to ``handle`` in batches of up to ``size`` events, taking whatever arrived within
    ``within`` s. One batch at a time: with a second one running in the background, a rebalance that
    moved partitions away left the enrich agent stalled (the scale-out test caught it)."""
    async for events in cast(faust.Stream[Any], stream).take_events(size, within=within):
        await run_batch(events, handle, on_failure)


async def run_batch(
    events: Sequence[EventT],
    handle: Handler,
    on_failure: OnFailure,
    retry_first: float = 1.0,
    retry_max: float = 30.0,
) -> None:
    """``handle(events)``; if it raises, ``on_failure(records, error)`` (the dead-letter topic) instead.

    The batch is released for acknowledgement only when one of the two returned. ``on_failure`` is
    retried with back-off (up to ``retry_max`` s apart) for as long as it fails: giving up would leave
    the batch held and the partition's commits stuck behind it. Cancellation (the worker stopping)
    propagates with the batch still held, so it is read again after the restart.
    """
    for event in events:  # no await before this: a stop cannot slip in between
        hold(event)
    try:
        await handle(events)
    except Exception as exc:
        log.exception("a batch of %d events failed; dead-lettering all of them", len(events))
        records = [record_of(event) for event in events]
        delay = retry_first
        while True:
            try:
                await on_failure(records, exc)
                break
            except Exception:
                log.exception(
                    "could not dead-letter the failed batch from %s; trying again in %.0f s",
                    records[0].where,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, retry_max)
    for event in events:
        event.message.decref()
