"""A partition the worker holds but no longer reads: found by its commit, then read again from there.

After rebalances Faust's per-partition fetch state (active, paused and buffered partitions, read offsets)
can be left wrong in more than one way. The scale-out test showed a partition taken over from a killed
worker that was never fetched past its commit, and fetches that jumped over offsets (``kafka/transport.py``
keeps those from being committed). Either way the posts wait in Kafka, uncommitted, until the next
rebalance or restart. This watch does not depend on which part went wrong: when a partition still has lag
at the same commit as ``after`` seconds ago (or its fetch was seen to jump), no stream queue of its topic
holds a message and no agent holds one of its messages, it is paused, sought to its commit and resumed,
and the state it was found in is logged. The queues matter: with a backlog, a commit can rightly stay put
while its message waits in a queue, and reading it again then would only repeat work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from faust.types import TP, AppT

from pipeline.kafka.transport import in_flight

log = logging.getLogger("pantau.worker")

__all__ = ["PartitionProgress", "StallWatch", "check_stalls", "progress_of", "read_again"]


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
    """A message of it at or after the commit is delivered and not yet acknowledged: an agent holds it (a
    batch waiting out an Elasticsearch outage, an alert waiting for its delivery), so it is busy."""
    queued: bool = False
    """A stream queue of its topic holds messages an agent has not taken yet."""

    @property
    def lagging(self) -> bool:
        return self.end is not None and self.end > (self.committed or 0) and not self.waiting


class StallWatch:
    """Which partitions have kept lag at the same commit for ``after`` seconds, judged while nothing of
    their topic is queued.

    Fed readings taken every so often; a rebalance (a new ``generation``) starts every clock afresh, since
    recovery pauses partitions on purpose. A partition whose fetch jumped is judged at once."""

    def __init__(self, after: float) -> None:
        self.after = after
        self._since: dict[TP, tuple[float, int | None]] = {}
        self._generation: int | None = None

    def observe(
        self, now: float, generation: int, readings: Iterable[PartitionProgress]
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
            if not reading.queued and (reading.skipped or now - started[0] >= self.after):
                stalled.append(reading)
                self._since[reading.tp] = (now, reading.committed)  # once per ``after`` while it stays
        for tp in set(self._since) - seen:
            del self._since[tp]
        return stalled


async def check_stalls(app: AppT, watch: StallWatch) -> None:
    """One reading of every partition the worker acknowledges; stalled ones are read again. Nothing is
    judged while a rebalance or recovery runs, or when the generation changed during the reading. A
    failure is logged and left to the next reading: the worker never stops for this watch."""
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
    for reading in watch.observe(time.monotonic(), generation, readings):
        if generation != app.consumer_generation_id or app.rebalancing:
            return
        try:
            await read_again(app, reading)
        except Exception as exc:  # revoked meanwhile, a slow broker: the next reading sees it again
            log.warning("could not read %s[%d] again: %r", reading.tp.topic, reading.tp.partition, exc)


def _queued_topics(app: AppT) -> set[str]:
    """Topics whose stream queues hold messages no agent has taken yet."""
    conductor: Any = app.topics
    return {
        topic
        for topic, channels in list(conductor._topic_name_index.items())
        if any(channel.queue.qsize() for channel in list(channels))
    }


async def progress_of(app: AppT, tps: set[TP]) -> list[PartitionProgress]:
    """Readings of ``tps`` from the worker's own consumer (Faust's aiokafka driver)."""
    consumer: Any = app.consumer
    if not tps:
        return []
    ends: Mapping[TP, int] = await consumer.highwaters(*tps)
    skipped: Mapping[TP, int] = getattr(consumer, "skipped", {})
    queued = _queued_topics(app)
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
                waiting=any(committed is None or m.offset >= committed for m in in_flight(consumer, tp)),
                queued=tp.topic in queued,
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


async def read_again(app: AppT, reading: PartitionProgress) -> None:
    """Pause the partition, seek it to its commit (or, where retention removed the offsets from there, to
    the log's start, the removed ones counted as done), set the read offset to match, resume it."""
    consumer: Any = app.consumer
    tp, committed = reading.tp, reading.committed
    log.warning(
        "partition %s[%d] has lag (committed %s, end %s, position %s, %s; %s): reading it again from "
        "its committed offset",
        tp.topic,
        tp.partition,
        committed,
        reading.end,
        reading.position,
        "its fetch jumped" if reading.skipped else "no progress for a while",
        describe(app, tp),
    )
    getattr(consumer, "skipped", {}).pop(tp, None)
    consumer.pause_partitions({tp})
    try:
        if committed is not None:
            start = (await consumer.earliest_offsets(tp)).get(tp)
            if start is not None and start > committed:
                log.warning(
                    "%s[%d]: offsets %d-%d are gone (retention); counted as done",
                    tp.topic,
                    tp.partition,
                    committed,
                    start - 1,
                )
                consumer._gap[tp].addi(committed, start)
                committed = start
            await consumer.seek_wait({tp: committed})
            consumer._read_offset[tp] = committed
        consumer._buffered_partitions.discard(tp)
    finally:
        if tp in consumer.assignment():  # not if it was revoked meanwhile
            consumer.resume_partitions({tp})
