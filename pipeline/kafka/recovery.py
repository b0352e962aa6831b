"""Table recovery that takes a changelog's end from what a fetch returns, not from ListOffsets alone.

Faust recovers a table by reading its changelog up to the end that ListOffsets reports, and remembers the
offset of the last record it read. At the next rebalance a worker that keeps the partition compares that
offset with the end reported then, and stops with ``ConsistencyError`` when it read past it. Apache Kafka
reports the high watermark, and a fetch never returns records at or past it, so the two always agree (the
check fails only where the log really lost records, after an unclean leader election). The embedded
broker, Tansu, reports the base offset of the partition's last record batch plus one: after a batch of
several records (a topic-state save writes one record per key) the reported end stays short of records
a fetch has already returned, until the next write. So recovery ends before the last records of that
batch: a worker that takes the tables over starts without them, and a worker that keeps them has read
past the reported end, which stops it at the next rebalance if nothing was written in between (standby
tables likewise).

Here the reported end is checked by fetching from the record before it: whatever comes back past it is
the partition's real end. On Apache Kafka nothing comes back past the high watermark, so the reported end
stands and the consistency check keeps its meaning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list
from faust.types import TP, AppT, ConsumerT

log = logging.getLogger("pantau.recovery")

__all__ = ["ChangelogEndRecovery", "ChangelogEndTableManager", "fetched_ends"]


async def fetched_ends(consumer: AIOKafkaConsumer, listed: Mapping[TP, int], timeout: float) -> dict[TP, int]:
    """Each partition's end (next offset): ``listed[tp]``, or one past the last record a fetch from
    ``listed[tp] - 1`` returns when that is further. ``consumer`` is started and in no group; a
    partition that returns nothing before ``timeout`` keeps its listed end."""
    ends = dict(listed)
    probe = {TopicPartition(tp.topic, tp.partition): tp for tp, end in listed.items() if end and end > 0}
    if not probe:
        return ends
    consumer.assign(list(probe))
    for partition, tp in probe.items():
        consumer.seek(partition, listed[tp] - 1)
    waiting = set(probe)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        batches = await consumer.getmany(*waiting, timeout_ms=100)
        for partition, records in batches.items():
            if records:
                tp = probe[partition]
                ends[tp] = max(ends[tp], max(r.offset for r in records) + 1)
                waiting.discard(partition)
    return ends


class ChangelogEndRecovery(Recovery):
    """Faust's recovery, with each changelog highwater checked by a fetch (see the module docstring).

    It also seeks the stream partitions before resuming them (``_resume_streams``). Both override private
    methods of faust-streaming, whose version is pinned; the scale-out test fails if an upgrade stops
    calling them."""

    probe_timeout = 5.0
    """Seconds a partition may take to return its last record before its listed end is kept."""

    async def _build_highwaters(
        self, consumer: ConsumerT, tps: set[TP], destination: Any, title: str
    ) -> None:
        # as faust/tables/recovery.py (0.15.3) ``Recovery._build_highwaters``: the highwater is the last
        # offset (end - 1), -1 for an empty partition; only the end it starts from differs
        listed = dict(await consumer.highwaters(*tps))
        ends = await self._fetched_ends(listed)
        for tp in sorted(ends):
            if ends[tp] != listed.get(tp):
                log.info(
                    "changelog %s[%d]: ListOffsets end %s, fetched up to %d",
                    tp.topic,
                    tp.partition,
                    listed.get(tp),
                    ends[tp],
                )
        highwaters = {tp: end - 1 if end is not None else -1 for tp, end in ends.items()}
        self.log.info(
            "Highwater for %s changelog partitions:\n%s",
            title,
            self._highwater_logtable(highwaters, title=title),
        )
        destination.clear()
        destination.update(highwaters)

    async def _resume_streams(self, generation_id: int = 0) -> None:
        # as faust/tables/recovery.py (0.15.3) ``Recovery._resume_streams``, with one change of order: the
        # stream partitions are sought to their committed offsets *before* they are resumed. Faust resumed
        # them first, while the flow was still on from reading the changelogs, so the fetcher delivered
        # their messages while the seek ran; the seek then moved the fetch position and reset the read
        # offsets under messages already delivered, and a partition could end with records fetched that
        # were never processed, its commit stuck below them (the scale-out test, about every other run).
        app: Any = self.app
        consumer = app.consumer
        await app.on_rebalance_complete.send()
        assignment = consumer.assignment()
        if app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
            consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        else:
            self.log.info("Resuming streams with empty assignment")
        self.completed.set()
        self.log.info("Resuming flow...")
        app.flow_control.resume()
        consumer.resume_flow()
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _fetched_ends(self, listed: dict[TP, int]) -> dict[TP, int]:
        if not any(end and end > 0 for end in listed.values()):
            return listed
        consumer = end_probe_consumer(self.app)
        try:
            await consumer.start()
            return await fetched_ends(consumer, listed, self.probe_timeout)
        except (KafkaError, OSError) as exc:  # OSError: TimeoutError too
            # Faust's own behaviour: correct on Apache Kafka, may stop the worker on the embedded broker
            log.warning("could not fetch changelog ends, using ListOffsets: %s", exc)
            return listed
        finally:
            await consumer.stop()


def end_probe_consumer(app: AppT) -> AIOKafkaConsumer:
    """A consumer in no group, connected as the app's own consumer is (faust's aiokafka driver)."""
    conf = app.conf
    transport: Any = app.transport
    return AIOKafkaConsumer(
        bootstrap_servers=server_list(transport.url, transport.default_port),
        client_id=f"{conf.broker_client_id}-changelog-end",
        request_timeout_ms=int(conf.broker_request_timeout * 1000.0),
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        check_crcs=conf.broker_check_crcs,
        **credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
    )


class ChangelogEndTableManager(TableManager):
    """``faust.App(TableManager=...)``: Faust's table manager with :class:`ChangelogEndRecovery`."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = ChangelogEndRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
