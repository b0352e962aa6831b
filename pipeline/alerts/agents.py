"""Faust wiring of the alerts (only wiring: the decisions are in ``detect.py`` and ``delivery.py``).

``alerts-observe``: enriched posts + ``pantau.topics`` → ``AlertObserver`` → ``pantau.alerts.input``.
``alerts-detect``:  ``pantau.alerts.input`` (one partition) → ``AlertDetector`` (state in a Faust table,
                    copied to Elasticsearch) → ``pantau.alerts`` + the ``pantau-alerts`` index.
``alerts-deliver``: ``pantau.alerts`` → ``Deliverer`` → subscribers; attempts in ``pantau-deliveries``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import EventT

from pipeline import metrics
from pipeline.alerts.delivery import Deliverer
from pipeline.alerts.detect import AlertDetector, AlertObserver, DetectorConfig, dump_alert
from pipeline.alerts.store import AlertStore
from pipeline.embedded.stack import Endpoints
from pipeline.kafka.batches import hold, process_batches, record_of, release, run_batch
from pipeline.kafka.deadletter import DeadLetterer
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import BulkIndexer, IndexAction, async_client
from pipeline.stages.records import Failed, Outgoing
from schemas.alerts import AlertStatus

log = logging.getLogger("pantau.alerts")
TICK_KEY = b"__tick__"
"""What the silence timer sends the detect agent: the table changes only inside a stream event."""
STATE_COPY_INTERVAL = 2.0
"""Seconds between writes of the detector's changed state to Elasticsearch."""


def register_alert_agents(
    app: faust.App,
    settings: Settings,
    endpoints: Endpoints,
    dead_letters: DeadLetterer,
    topic: Callable[[str], faust.TopicT],
) -> None:
    """Add the alert agents to the worker's app (nothing when ``PANTAU_ALERTS_ENABLED`` is false)."""
    if not settings.alerts_enabled:
        return
    input_topic, alerts_topic = topic(settings.topic_alerts_input), topic(settings.topic_alerts)

    def new_indexer() -> BulkIndexer:
        es = async_client(settings, endpoints.elasticsearch)
        return BulkIndexer(es, settings.bulk_backoff, settings.bulk_backoff_max, settings.bulk_max_attempts)

    async def send(target: faust.TopicT, messages: Sequence[Outgoing]) -> None:
        acks: list[Awaitable[Any]] = [await target.send(key=m.key, value=m.value) for m in messages]
        await asyncio.gather(*acks)

    # -- observe -----------------------------------------------------------------------------------------
    observer = AlertObserver(settings.topic_enriched, settings.topic_topics)
    observed = app.topic(
        settings.topic_enriched, settings.topic_topics, key_serializer="raw", value_serializer="raw"
    )

    @app.agent(observed, name="alerts-observe")
    async def observe(stream: faust.StreamT[bytes]) -> None:
        async def handle(events: Sequence[EventT]) -> None:
            out, failed = [], []
            for event in events:
                result = observer.observe(record_of(event))
                if isinstance(result, Failed):
                    failed.append(result)
                elif result is not None:
                    out.append(result)
            await send(input_topic, out)
            await dead_letters.deliver(failed)

        await process_batches(
            stream, settings.batch_size * 4, settings.batch_timeout, handle, dead_letters.on_failure("alerts")
        )

    # -- detect ------------------------------------------------------------------------------------------
    table = app.Table("alert-state", partitions=1, key_type=bytes, value_type=bytes)
    detector = AlertDetector(
        DetectorConfig.from_settings(settings), settings.kibana_url, settings.index_alias
    )
    store = AlertStore(settings, endpoints)
    indexer: list[BulkIndexer] = []
    copy_pending: dict[bytes, bytes | None] = {}
    counted: set[str] = set()

    async def restore() -> None:
        entries = [(k, v) for k, v in table.items()]
        if not entries:  # a fresh broker (the embedded one after `pantau down`): the Elasticsearch copy
            entries = await store.read_state()
            if entries:
                log.info("alert state restored from Elasticsearch (%d entries)", len(entries))
        detector.restore(entries)

    async def emit(alerts: list[Any]) -> None:
        if not alerts:
            return
        if not indexer:
            indexer.append(new_indexer())
        messages = [Outgoing(a.key.encode(), dump_alert(a)) for a in alerts]
        await send(alerts_topic, messages)
        actions = [
            IndexAction(key=a.id, index=settings.alerts_index, source=a.model_dump(mode="json"))
            for a in alerts
        ]
        refused = await indexer[0].index(actions)
        for failure in refused:
            log.error("alerts index refused %s: %s", failure.key, failure.reason)
        for alert in alerts:
            if alert.status == AlertStatus.FIRING and alert.id not in counted:
                counted.add(alert.id)  # an episode counts once (re-published states do not)
                metrics.alert_fired(alert.kind.value)
            log.info(
                "alert %s %s rev %d %s: %s",
                alert.status,
                alert.key,
                alert.revision,
                alert.severity,
                alert.summary,
            )

    def save() -> None:
        for key, value in detector.changes().items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
            copy_pending[key] = value

    async def detect_one(events: Sequence[EventT]) -> None:
        (event,) = events
        if not detector.restored:
            await restore()
        now = datetime.now(UTC)
        if event.message.key == TICK_KEY:
            alerts = detector.check_silence(now)
        else:
            outcome = detector.add([record_of(event)], now)
            await dead_letters.deliver(outcome.failed)
            alerts = outcome.alerts
        await emit(alerts)
        save()

    @app.agent(input_topic, name="alerts-detect")
    async def detect(stream: faust.StreamT[bytes]) -> None:
        try:
            async for event in cast(faust.Stream[bytes], stream).events():
                await run_batch([event], detect_one, dead_letters.on_failure("alerts"))
        finally:
            for bulk in indexer:
                await bulk.close()
            indexer.clear()
            if copy_pending:
                await store.write_state(dict(copy_pending))
            await store.close()

    @app.timer(interval=max(min(settings.alerts_silence_after / 4, 60.0), 0.5))
    async def silence_tick() -> None:
        if detector.restored:
            await input_topic.send(key=TICK_KEY, value=b"")

    @app.timer(interval=STATE_COPY_INTERVAL)
    async def copy_state() -> None:
        if not copy_pending:
            return
        batch = dict(copy_pending)
        copy_pending.clear()
        try:
            await store.write_state(batch)
        except Exception:
            log.exception("could not copy the alert state to Elasticsearch; trying again")
            for key, value in batch.items():
                copy_pending.setdefault(key, value)

    # -- deliver -----------------------------------------------------------------------------------------
    deliverer = Deliverer(settings, AlertStore(settings, endpoints), dead_letters)

    @app.agent(alerts_topic, name="alerts-deliver")
    async def deliver(stream: faust.StreamT[bytes]) -> None:
        await deliverer.start()

        async def handle(events: Sequence[EventT]) -> None:
            for event in events:
                hold(event)  # released when every subscriber's delivery of it ended (sent or dead-lettered)
                deliverer.take(record_of(event), functools.partial(release, event))

        try:
            await process_batches(
                stream,
                settings.batch_size,
                settings.batch_timeout,
                handle,
                dead_letters.on_failure("delivery"),
            )
        finally:
            await deliverer.stop()

    @app.timer(interval=max(min(settings.alerts_group_wait / 2, 30.0), 0.2))
    async def delivery_tick() -> None:
        await deliverer.tick()
