"""Batches of stream events whose offsets are committed only once the batch is finished.

Faust's ``Stream.take_events`` acknowledges a batch when the consumer loop moves on, and also when the
loop body raised or the worker was stopped in the middle of it, so a batch that was never processed
would have its offsets committed. While its batch runs, each message here carries one extra reference,
which makes that acknowledgement a no-op unless the batch finished: an unfinished batch stays
uncommitted and is read again after a restart or rebalance.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import faust
from faust.types import EventT

log = logging.getLogger("pantau.worker")

Handler = Callable[[Sequence[EventT]], Awaitable[None]]
OnFailure = Callable[[Sequence[EventT], Exception], Awaitable[None]]

__all__ = ["Handler", "OnFailure", "process_batches", "run_batch"]


async def process_batches(
    stream: faust.StreamT[Any], size: int, within: float, handle: Handler, on_failure: OnFailure
) -> None:
    """Feed ``stream`` to ``handle`` in batches of up to ``size`` events (waiting at most ``within`` s)."""
    async for events in cast(faust.Stream[Any], stream).take_events(size, within=within):
        await run_batch(events, handle, on_failure)


async def run_batch(events: Sequence[EventT], handle: Handler, on_failure: OnFailure) -> None:
    """``handle(events)``; if it raises, ``on_failure(events, error)`` (the dead-letter topic) instead.

    The batch is released for acknowledgement only when one of the two returned. Cancellation (the
    worker stopping) and a failing ``on_failure`` propagate with the batch still held.
    """
    for event in events:  # no await before this: a stop cannot slip in between
        event.message.incref()
    try:
        await handle(events)
    except Exception as exc:
        log.exception("a batch of %d events failed; dead-lettering all of them", len(events))
        try:
            await on_failure(events, exc)
        except Exception:
            first = events[0].message
            log.critical(
                "could not dead-letter the failed batch: its offsets (from %s[%d]@%d) stay uncommitted "
                "and are read again after a restart",
                first.topic,
                first.partition,
                first.offset,
            )
            raise
    for event in events:
        event.message.decref()
