"""Faust's aiokafka transport, with a short fetch wait and commits that never pass an unread offset.

Fetch wait: Faust fixes the consumer's ``fetch_max_wait_ms`` at 1,500 ms. Apache Kafka answers a fetch as
soon as data arrives, so there it only bounds how long an idle fetch is held; the embedded broker holds a
fetch for part of that wait even with data ready, which added about a quarter of a second to each hop
(raw → enrich, enriched → index). A short wait costs only more idle fetch requests.

Commits: Faust commits a partition up to the end of the acknowledged offsets that follow its last commit,
and it lets that run start one past the commit. When its fetch loop sees offsets jump, it also records the
jump as a gap that counts as acknowledged, the message it is about to deliver included. Both are meant for
compacted topics and transaction markers, where offsets really are missing. Around rebalances Faust's
read offsets can go stale, and then a message that was never delivered was committed over: the scale-out
test lost one post, and alert inputs, that way. On a topic that is not compacted, written without
transactions, offsets are contiguous, so here a commit starts exactly at the last one, and a jump is a
gap only where the log no longer holds the offsets (retention moved its start). Any other jump is logged
and its partition marked in ``skipped``: its commit stays put, and the worker's stall watch
(``kafka/stalls.py``) reads it again from there. On every topic, compacted too, a commit also stops below
the lowest offset still delivered and unacknowledged: before a partition's first commit Faust counted
from whatever was acknowledged first, past a message an agent still held.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, TransportT

from pipeline.kafka.offsets import commit_run, jump

log = logging.getLogger("pantau.worker")

FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: driver.Transport) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer


def in_flight(consumer: Any, tp: TP) -> list[Any]:
    """``tp``'s messages delivered to a stream and not acknowledged. Faust's own set also keeps a message
    acknowledged below the commit (a repeat after a seek), so the flag decides."""
    return [m for m in list(consumer._unacked_messages) if m.tp == tp and not m.acked]


class _Consumer(driver.Consumer):
    skipped: dict[TP, int]
    """Partitions whose fetch jumped over offsets the log still holds: the first offset skipped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skipped = {}

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _contiguous(self, tp: TP) -> bool:
        return tp.topic not in getattr(self.app, "compacted_topics", frozenset())

    def _new_offset(self, tp: TP) -> int | None:
        # as faust/transport/consumer.py (0.15.3) ``Consumer._new_offset``, but never at or past an offset
        # still delivered and unacknowledged, and on contiguous topics without the one-offset slack and
        # with only the gaps ``_add_gap`` below records
        acked: list[int] = self._acked[tp]
        if not acked:
            return None
        gaps = self._gap[tp]
        if gaps:
            for gap in gaps.overlap(0, max(acked) + 1):
                acked.extend(range(gap.begin, gap.end))
            gaps.chop(0, max(acked) + 1)
        acked[:] = sorted(set(acked))
        committed = self._committed_offset[tp]
        held = min(
            (m.offset for m in in_flight(self, tp) if committed is None or m.offset >= committed),
            default=None,
        )
        slack = 0 if self._contiguous(tp) else 1
        run = commit_run(acked, committed, held, slack)
        if not run:
            return None  # the message at the commit is not acknowledged yet, or was never delivered
        acked[: len(run)] = []
        self._acked_index[tp].difference_update(run)
        return run[-1] + 1

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust's fetch loop read ``offset_to`` right after ``offset_from - 1``."""
        if not self._contiguous(tp):
            await super()._add_gap(tp, offset_from, offset_to)
            return
        committed = self._committed_offset[tp]
        try:
            earliest = (await self.earliest_offsets(tp)).get(tp)
        except Exception as exc:  # the broker is away: all of it counts as skipped, read again later
            log.warning("cannot read where %s[%d] starts: %s", tp.topic, tp.partition, exc)
            earliest = None
        seen = jump(committed, offset_from, offset_to, earliest)
        if seen.gone:  # retention removed these: acknowledged, as Faust does
            self._gap[tp].addi(seen.gone.start, seen.gone.stop)
        if seen.skipped is not None:
            log.warning(
                "offsets %d-%d of %s[%d] were passed over by the fetch; the commit (%s) stays below them "
                "until they are acknowledged, or the stall watch reads them again",
                seen.skipped,
                offset_to - 1,
                tp.topic,
                tp.partition,
                committed,
            )
            self.skipped[tp] = min(self.skipped.get(tp, seen.skipped), seen.skipped)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self.skipped.pop(tp, None)
        await super().on_partitions_revoked(revoked)


class _Transport(driver.Transport):
    Consumer = _Consumer


class App(faust.App):
    """``faust.App`` with the consumer above; ``compacted_topics`` names the topics whose offsets may have
    holes (set by the app before it starts)."""

    compacted_topics: frozenset[str] = frozenset()

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
