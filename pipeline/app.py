"""The Faust application: it only wires the stages (``pipeline/stages/``) to topics.

``enrich``: raw topic → ``EnrichStage`` (in the model's thread) → enriched topic + topic discovery input.
``index``:  enriched topic + topic assignments → ``IndexStage`` → bulk writes; offsets acknowledged only
            after Elasticsearch acknowledged the documents. The only writer of post documents.
``topics``: discovery input → ``TopicStage`` → ``pantau.topics``, the topics index and assignments.
What a stage gives up on goes to the dead-letter topic with its reason (``DeadLetterer``), and the agents
go on. Every agent follows one shape: events → records → stage → send what it asks → release the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import faust
from elasticsearch import AsyncElasticsearch
from faust.types import EventT

from pipeline import metrics
from pipeline.alerts.agents import register_alert_agents
from pipeline.alerts.scheduled import register_scheduled
from pipeline.embedded.stack import Endpoints
from pipeline.enrich.enricher import Enricher
from pipeline.health import HealthReporter
from pipeline.kafka.batches import hold, process_batches, record_of, release, run_batch
from pipeline.kafka.config import faust_broker_options
from pipeline.kafka.deadletter import DeadLetterer
from pipeline.kafka.recovery import ChangelogEndTableManager
from pipeline.kafka.stalls import StallWatch, check_stalls
from pipeline.kafka.topics import compacted_topics, topic_max_message_bytes
from pipeline.kafka.transport import App
from pipeline.responsiveness.agent import register_responsiveness_agent
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import BulkIndexer, async_client, index_name
from pipeline.stages.enrich import EnrichStage
from pipeline.stages.index import IndexStage
from pipeline.stages.records import Outgoing, Record
from pipeline.stages.topics import TopicStage

log = logging.getLogger("pantau.worker")
PRODUCER_MAX_REQUEST_BYTES = 16_000_000
"""What the worker's producer may send in one request; each topic's own limit is what binds."""
TICK_KEY = b"__tick__"
"""An empty message the idle timer sends the topics agent: tables change only inside a stream event, so
without it an update the timer made would reach the changelog only with the next post, and a worker killed
in between would come back with the state before that update (and could mint new ids for topics it had
published)."""


def create_app(settings: Settings, endpoints: Endpoints, model: Enricher) -> faust.App:
    """The worker's app; ``model`` is loaded before, so a worker that cannot enrich never joins."""
    app = App(
        settings.app_id,
        **faust_broker_options(settings, endpoints.kafka),
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(settings.session_timeout / 6, 0.5),
        broker_commit_interval=settings.commit_interval,
        stream_wait_empty=False,  # a stop cancels a running batch, which stays uncommitted (kafka/batches.py)
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=PRODUCER_MAX_REQUEST_BYTES,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        store="memory://",
        TableManager=ChangelogEndTableManager,  # the embedded broker under-reports changelog ends
        datadir=str(settings.run_dir / "faust"),  # not the working directory, which may be read-only
        web_enabled=False,
        autodiscover=False,
    )
    app.compacted_topics = compacted_topics(settings)  # offsets may have holes there (kafka/transport.py)

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw")

    raw_topic, enriched_topic = topic(settings.topic_raw), topic(settings.topic_enriched)
    dead_topic, assignments_topic = topic(settings.topic_dead_letter), topic(settings.topic_assignments)
    topics_input, topics_output = topic(settings.topic_topics_input), topic(settings.topic_topics)
    health = HealthReporter(settings.run_dir)
    broker_limit = topic_max_message_bytes(settings, endpoints.kafka, settings.topic_dead_letter)
    dead_letters = DeadLetterer(
        lambda key, value: dead_topic.send(key=key, value=value),
        settings.topic_dead_letter,
        min(broker_limit or settings.dead_letter_max_bytes, PRODUCER_MAX_REQUEST_BYTES),
        backoff_max=settings.dead_letter_backoff_max,
        health=health,
    )

    def indexer() -> BulkIndexer:
        es: AsyncElasticsearch = async_client(settings, endpoints.elasticsearch)
        return BulkIndexer(es, settings.bulk_backoff, settings.bulk_backoff_max, settings.bulk_max_attempts)

    async def send(target: faust.TopicT, messages: Sequence[Outgoing]) -> list[Awaitable[Any]]:
        return [await target.send(key=m.key, value=m.value) for m in messages]

    # -- enrich ------------------------------------------------------------------------------------------
    enrich_stage = EnrichStage(model)
    model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pantau-model")

    @app.agent(raw_topic, name="enrich")
    async def enrich(stream: faust.StreamT[bytes]) -> None:
        @metrics.timed_batch("enrich")
        async def handle(events: Sequence[EventT]) -> None:
            records = [record_of(event) for event in events]
            loop = asyncio.get_running_loop()
            with metrics.timed(metrics.MODEL_SECONDS):
                outcome = await loop.run_in_executor(model_thread, enrich_stage.process, records)
            acks = await send(enriched_topic, outcome.enriched) + await send(
                topics_input, outcome.topic_inputs
            )
            await asyncio.gather(*acks, dead_letters.deliver(outcome.failed))
            metrics.processed("enrich", len(outcome.enriched))
            log.info("enriched %d, dead-lettered %d", len(outcome.enriched), len(outcome.failed))

        await process_batches(
            stream,
            settings.batch_size,
            settings.batch_timeout,
            handle,
            dead_letters.on_failure("enrich"),
        )

    # -- index -------------------------------------------------------------------------------------------
    index_stage = IndexStage(
        lambda item: index_name(settings, item.created_at),
        settings.topic_enriched,
        settings.topic_assignments,
    )
    held: dict[Record, EventT] = {}  # assignment events kept unacknowledged until their post is written

    index_input = app.topic(
        settings.topic_enriched, settings.topic_assignments, key_serializer="raw", value_serializer="raw"
    )

    @app.agent(index_input, name="index")
    async def index(stream: faust.StreamT[bytes]) -> None:
        bulk = indexer()

        @metrics.timed_batch("index")
        async def handle(events: Sequence[EventT]) -> None:
            records = [record_of(event) for event in events]
            for record in index_stage.forget(lambda r: r.tp in app.consumer.assignment()):
                held.pop(record, None)  # the partition moved: its new owner reads it again
            plan = index_stage.plan(records)
            outcome = index_stage.settle(plan, await bulk.index(plan.actions))
            by_record = dict(zip(records, events, strict=True))
            for record in outcome.hold:
                hold(by_record[record])
                held[record] = by_record[record]
            await dead_letters.deliver(outcome.failed)
            for record in outcome.release:
                event = held.pop(record, None)
                if event is not None:
                    release(event)
            metrics.processed("index", outcome.indexed)
            log.info(
                "indexed %d, dead-lettered %d, %d topic labels wait for their post",
                outcome.indexed,
                len(outcome.failed),
                len(index_stage.held),
            )

        try:
            await process_batches(
                stream,
                settings.batch_size * 4,
                settings.batch_timeout,
                handle,
                dead_letters.on_failure("index"),
            )
        finally:
            await bulk.close()

    register_responsiveness_agent(app, settings, dead_letters, indexer)

    # -- topics ------------------------------------------------------------------------------------------
    window_table = app.Table("topic-window", partitions=1, key_type=bytes, value_type=bytes)
    state_table = app.Table("topic-state", partitions=1, key_type=bytes, value_type=bytes)
    topic_stage = TopicStage(
        settings.topics_window_hours,
        settings.topics_min_size,
        settings.topics_update_interval,
        settings.topics_index,
    )
    topic_lock = asyncio.Lock()  # the agent and the idle timer
    topic_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pantau-topics")
    topic_indexer: list[BulkIndexer] = []

    async def stale_topic_ids() -> set[str]:
        """Topic documents an earlier run left in the index (read once, before the first update)."""
        if topic_stage.reconciled:
            return set()
        es = topic_indexer[0].es
        if not await es.indices.exists(index=settings.topics_index):
            return set()
        response = await es.search(index=settings.topics_index, size=10_000, source=False)
        return {hit["_id"] for hit in response["hits"]["hits"]}

    async def publish() -> None:
        """Re-cluster and publish; if Kafka or Elasticsearch fails it, the next interval tries again (the
        posts are in the window already, and an update republishes every active topic)."""
        if not topic_indexer:  # the agent has not started (or has stopped)
            topic_stage.failed_publish()
            return
        try:
            stale = await stale_topic_ids()
            loop = asyncio.get_running_loop()
            update = await loop.run_in_executor(topic_thread, topic_stage.update, stale)
            acks = await send(topics_output, update.topics) + await send(
                assignments_topic, update.assignments
            )
            await asyncio.gather(*acks)
            refused = await topic_indexer[0].index(update.documents)
            if refused:
                raise RuntimeError(f"topics index refused {len(refused)} documents: {refused[0].reason}")
            topic_stage.confirm(update)
        except Exception:
            log.exception("topic update failed; trying again in %.0f s", settings.topics_update_interval)
            topic_stage.failed_publish()

    def save_tables() -> None:
        changes = topic_stage.table_changes(list(state_table.keys()))
        if changes is None:
            return
        for key in changes.state_deleted:
            del state_table[key]
        for key, value in changes.state.items():
            state_table[key] = value
        for key in changes.window_deleted:
            window_table.pop(key, None)

    async def add_to_window(events: Sequence[EventT]) -> None:
        (event,) = events
        if not topic_stage.restored:  # the tables are read here, on the loop; parsed in the model thread
            entries, saved = list(window_table.items()), list(state_table.items())
            await asyncio.get_running_loop().run_in_executor(
                topic_thread, topic_stage.restore, entries, saved
            )
        if event.message.key != TICK_KEY:
            added = topic_stage.add(record_of(event))
            if not isinstance(added, tuple):
                await dead_letters.deliver([added])
                return
            window_table[added[0]] = added[1]
            if topic_stage.due():
                await publish()
        save_tables()

    @app.agent(topics_input, name="topics")
    async def topics(stream: faust.StreamT[bytes]) -> None:
        topic_indexer.append(indexer())
        try:
            # One event at a time: Faust tables can only change while the stream holds a current event.
            async for event in cast(faust.Stream[bytes], stream).events():
                async with topic_lock:
                    await run_batch([event], add_to_window, dead_letters.on_failure("topics"))
        finally:
            await topic_indexer.pop().close()

    def owns_discovery() -> bool:
        return (settings.topic_topics_input, 0) in app.consumer.assignment()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust sends (sender, revoked)
    async def discovery_moved(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        if any(tp.topic == settings.topic_topics_input for tp in revoked):
            topic_stage.reset()

    @app.timer(interval=max(settings.topics_update_interval / 2, 0.5))
    async def flush_idle() -> None:
        """Publish an update when posts stopped arriving before the interval came round."""
        if not topic_stage.restored or not topic_stage.due() or topic_lock.locked() or not owns_discovery():
            return
        async with topic_lock:
            if topic_stage.due():
                await publish()
                await topics_input.send(key=TICK_KEY, value=b"")  # so the agent saves the new state

    stall_watch = StallWatch(settings.stall_after)

    @app.timer(interval=max(settings.stall_after / 4, 0.5))
    async def watch_stalls() -> None:
        """Partitions held but not read (kafka/stalls.py)."""
        await check_stalls(app, stall_watch)

    register_alert_agents(app, settings, endpoints, dead_letters, topic)
    register_scheduled(app, settings, endpoints, topic)
    if settings.metrics_port:

        @app.timer(interval=metrics.LAG_INTERVAL)
        async def measure_lag() -> None:
            """The group's lag as the broker reports it (a blocking admin client, so in a thread)."""
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, metrics.measure_lag, settings, endpoints.kafka
                )
            except Exception as exc:
                log.warning("cannot read the consumer lag: %s", exc)

    return app
