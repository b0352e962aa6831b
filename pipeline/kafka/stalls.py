"""A partition the worker holds but no longer reads: found by its commit, then read again from there.

After rebalances Faust's per-partition fetch state (active, paused and buffered partitions, read offsets)
can be left wrong in more than one way. The scale-out test showed a partition taken over from a killed
worker that was never fetched past its commit, and fetches that jumped over offsets (``kafka/transport.py``
keeps those from being committed). Either way the posts wait in Kafka, uncommitted, until the next
rebalance or restart. This watch does not depend on which part went wrong: when no stream queue holds a
message and a partition still has lag at the same commit as ``after`` seconds ago (or its fetch was seen
to jump), while the message at that commit is not held by an agent, it is sought to its commit and
resumed, and the state it was found in is logged. The queues matter: with a backlog, a commit can rightly
stay put while its message waits in a queue, and reading it again then would only repeat work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from faust.types import TP, AppT

log = logging.getLogger("pantau.worker")

__all__ = ["PartitionProgress", "StallWatch", "check_stalls", "progress_of", "resume_stalled"]


@dataclass(frozen=True)
class PartitionProgress:
    """One reading of a partition the worker is assigned."""

    tp: TP
    committed: int | None
    """The worker's last committed (or sought) offset, the next to read; None before its first."""
    end: int | None
    """The partition's end (next offset to be written), as the broker lists it."""
    position: int | None = None
    """The consumer's next fetch offset (for the log); None while it has none."""
    skipped: bool = False
    """The fetch jumped over offsets at or after the commit that the log still holds."""
    waiting: bool = False
    """The message at the commit is delivered and not yet acknowledged: an agent holds it (a batch
    waiting out an Elasticsearch outage, an alert waiting for its delivery), so the partition is busy."""

    @property
    def lagging(self) -> bool:
        return self.end is not None and self.end > (self.committed or 0) and not self.waiting


class StallWatch:
    """Which partitions have kept lag at the same commit for ``after`` seconds, judged when ``idle`` (no
    stream queue holds a message).

    Fed readings taken every so often; a rebalance (a new ``generation``) starts every clock afresh, since
    recovery pauses partitions on purpose. A partition whose fetch jumped is judged at once."""

    def __init__(self, after: float) -> None:
        self.after = after
        self._since: dict[TP, tuple[float, int | None]] = {}
        self._generation: int | None = None

    def observe(
        self, now: float, generation: int, readings: Iterable[PartitionProgress], idle: bool
    ) -> list[PartitionProgress]:
        if generation != self._generation:
            self._since.clear()
            self._generation = generation
        stalled: list[PartitionProgress] = []
        seen: set[TP] = set()
        for reading in readings:
            seen.add(reading.tp)
            if not reading.lagging:
                self._since.pop(reading.tp, None)
                continue
            started = self._since.get(reading.tp)
            if started is None or started[1] != reading.committed:
                self._since[reading.tp] = (now, reading.committed)
                if not reading.skipped:
                    continue
                started = self._since[reading.tp]
            if idle and (reading.skipped or now - started[0] >= self.after):
                stalled.append(reading)
                self._since[reading.tp] = (now, reading.committed)  # once per ``after`` while it stays
        for tp in set(self._since) - seen:
            del self._since[tp]
        return stalled


async def check_stalls(app: AppT, watch: StallWatch) -> None:
    """One reading of every partition the worker acknowledges; stalled ones are read again. Nothing is
    judged while a rebalance or recovery runs, or when the generation changed during the reading."""
    consumer: Any = app.consumer
    if app.rebalancing or not consumer.flow_active:
        return
    generation = app.consumer_generation_id
    held = {tp for tp in consumer.assignment() if app.topics.acks_enabled_for(tp.topic)}
    try:
        readings = await progress_of(app, held)
    except Exception as exc:  # a broker that is away: the next reading tries again
        log.warning("cannot read partition progress: %s", exc)
        return
    if generation != app.consumer_generation_id or app.rebalancing:
        return
    skipped: dict[TP, int] = getattr(consumer, "skipped", {})
    for reading in readings:  # read again and committed past: settled
        if reading.tp in skipped and not reading.skipped:
            del skipped[reading.tp]
    stalled = watch.observe(time.monotonic(), generation, readings, idle=queues_empty(app))
    if stalled:
        await resume_stalled(app, stalled)


def queues_empty(app: AppT) -> bool:
    """No stream queue holds a message: nothing fetched is waiting for an agent to take it."""
    conductor: Any = app.topics
    return not any(channel.queue.qsize() for channel in list(conductor._topics))


async def progress_of(app: AppT, tps: set[TP]) -> list[PartitionProgress]:
    """Readings of ``tps`` from the worker's own consumer (Faust's aiokafka driver)."""
    consumer: Any = app.consumer
    if not tps:
        return []
    ends: Mapping[TP, int] = await consumer.highwaters(*tps)
    skipped: Mapping[TP, int] = getattr(consumer, "skipped", {})
    in_flight = {(m.tp, m.offset) for m in list(consumer._unacked_messages)}
    flying_tps = {tp for tp, _ in in_flight}
    readings = []
    for tp in sorted(tps):
        committed = consumer._committed_offset.get(tp)
        readings.append(
            PartitionProgress(
                tp=tp,
                committed=committed,
                end=ends.get(tp),
                position=_position(consumer, tp),
                skipped=tp in skipped and (committed is None or skipped[tp] >= committed),
                waiting=(tp, committed) in in_flight if committed is not None else tp in flying_tps,
            )
        )
    return readings


def _position(consumer: Any, tp: TP) -> int | None:
    """Read from the consumer thread's aiokafka state without a call into that thread: a reading."""
    try:
        assignment = consumer._thread._ensure_consumer()._subscription.subscription.assignment
        state = assignment.state_value(tp)
    except Exception:
        return None
    if state is None or not state.has_valid_position:
        return None
    return int(state.position)


def describe(app: AppT, tp: TP) -> str:
    """Faust's and aiokafka's view of ``tp``, for the log line that says a stall was found."""
    consumer: Any = app.consumer
    facts: dict[str, Any] = {
        "active": tp in (consumer._active_partitions or set()),
        "paused": tp in consumer._paused_partitions,
        "buffered": tp in consumer._buffered_partitions,
        "read_offset": consumer._read_offset.get(tp),
    }
    try:
        aiokafka_consumer = consumer._thread._ensure_consumer()
        facts["prefetched"] = tp in aiokafka_consumer._fetcher._records
    except Exception as exc:  # a reading only
        facts["aiokafka"] = repr(exc)
    return ", ".join(f"{k}={v}" for k, v in facts.items())


async def resume_stalled(app: AppT, stalled: list[PartitionProgress]) -> None:
    """Seek each stalled partition to its committed offset and make it fetchable again."""
    consumer: Any = app.consumer
    for reading in stalled:
        tp = reading.tp
        log.warning(
            "partition %s[%d] has lag (committed %s, end %s, position %s, %s; %s): reading it again from "
            "its committed offset",
            tp.topic,
            tp.partition,
            reading.committed,
            reading.end,
            reading.position,
            "its fetch jumped" if reading.skipped else "no progress for a while",
            describe(app, tp),
        )
        getattr(consumer, "skipped", {}).pop(tp, None)
        consumer.resume_partitions({tp})
        consumer._buffered_partitions.discard(tp)
        if reading.committed is not None:
            await consumer.seek_wait({tp: reading.committed})  # in the consumer's thread, read offset too
