"""Faust wiring of responsiveness (called once from ``create_app``): two agents and a timer.

``responses-route``: enriched posts → ``ResponsivenessStage.route`` → ``pantau.responses.input``, keyed
                     by thread (so the table below is partitioned by thread root).
``responses``:       thread messages → ``ResponsivenessStage.link`` with the thread's state from the
                     ``responses`` table (changelog topic) → ``pantau-responses`` documents, then the table.
``overdue`` timer:   complaints whose SLA ran out unanswered are rewritten as ``overdue`` (wall time);
                     settled threads idle for ``PANTAU_RESPONSE_KEEP_DAYS`` are pruned from the table.
The documents are written before the table: a worker killed in between reads the message again and
writes the same documents, where the reverse order would find the complaint known and write nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
from elasticsearch import AsyncElasticsearch, NotFoundError
from faust.types import EventT

from pipeline.gazetteer.accounts import OfficialAccounts
from pipeline.kafka.batches import process_batches, record_of, run_batch
from pipeline.kafka.deadletter import DeadLetterer
from pipeline.responsiveness.clock import SlaClock, load_holidays, parse_hours
from pipeline.responsiveness.stage import ResponsivenessStage
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import BulkIndexer
from pipeline.stages.records import Failed

log = logging.getLogger("pantau.responsiveness")


def sla_clock(settings: Settings) -> SlaClock:
    hours = parse_hours(settings.response_hours) if settings.response_business_hours else None
    holidays = load_holidays(settings.holidays_file) if hours else set()
    return SlaClock(settings.response_sla, settings.response_sla_agencies, hours, holidays)


def register_responsiveness_agent(
    app: faust.App,
    settings: Settings,
    dead_letters: DeadLetterer,
    indexer: Callable[[], BulkIndexer],
) -> None:
    stage = ResponsivenessStage(
        OfficialAccounts.load(settings.accounts_file), sla_clock(settings), settings.responses_index
    )

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw")

    enriched, thread_input = topic(settings.topic_enriched), topic(settings.topic_responses_input)
    table = app.Table("responses", partitions=settings.topic_partitions, key_type=bytes, value_type=bytes)
    lock = asyncio.Lock()  # the agent and the overdue timer write the same documents
    bulk: list[BulkIndexer] = []
    stopped = False
    keep = timedelta(days=settings.response_keep_days)

    def writer() -> BulkIndexer:
        if not bulk:
            bulk.append(indexer())
        return bulk[0]

    @app.agent(enriched, name="responses-route")
    async def route(stream: faust.StreamT[bytes]) -> None:
        async def handle(events: Sequence[EventT]) -> None:
            outcome = stage.route([record_of(event) for event in events])
            acks = [await thread_input.send(key=m.key, value=m.value) for m in outcome.messages]
            await asyncio.gather(*acks, dead_letters.deliver(outcome.failed))

        await process_batches(
            stream,
            settings.batch_size * 4,
            settings.batch_timeout,
            handle,
            dead_letters.on_failure("responses"),
        )

    async def from_index(thread: bytes) -> Mapping[bytes, bytes]:
        """The thread's records in the index, for a thread the table does not know: the embedded broker
        loses its changelog topics when it restarts (memory storage), and a reset or deleted changelog on
        a real cluster would do the same. One search per thread new to the table."""
        es: AsyncElasticsearch = writer().es
        try:
            response = await es.search(
                index=settings.responses_index, query={"term": {"thread": thread.decode()}}, size=1000
            )
        except NotFoundError:
            return {}
        return stage.restore(hit["_source"] for hit in response["hits"]["hits"])

    async def link_one(events: Sequence[EventT]) -> None:
        (event,) = events
        record = record_of(event)
        thread = record.key or b""
        async with lock:
            stored = table.get(thread)
            if stored is None:
                stored = (await from_index(thread)).get(thread)
            outcome = stage.link([record], {thread: stored}, datetime.now(UTC))
            refused = await writer().index(outcome.documents)
            for key, value in outcome.states.items():
                table[key] = value
            for key in outcome.pruned:
                table.pop(key, None)
        failed = outcome.failed + [Failed(record, "responses", f"{r.key}: {r.reason}") for r in refused]
        await dead_letters.deliver(failed)

    @app.agent(thread_input, name="responses")
    async def link(stream: faust.StreamT[bytes]) -> None:
        # One event at a time: Faust tables can only change while the stream holds a current event.
        nonlocal stopped
        stopped = False
        try:
            async for event in cast(faust.Stream[bytes], stream).events():
                await run_batch([event], link_one, dead_letters.on_failure("responses"))
        finally:
            stopped = True
            if bulk:
                await bulk.pop().close()

    @app.timer(interval=settings.response_check_interval)
    async def overdue() -> None:
        """Rewrite complaints whose SLA ran out unanswered as ``overdue``; a failure is tried again at the
        next interval."""
        if lock.locked() or stopped:  # a stopped agent closed the client
            return
        async with lock:
            try:
                items: list[tuple[bytes, bytes]] = list(cast(Any, table).items())
                actions = stage.overdue(items, datetime.now(UTC))
                if actions:
                    refused = await writer().index(actions)
                    stage.overdue_done(actions)
                    log.info("%d complaints overdue (%d refused)", len(actions), len(refused))
                # Settled threads leave the table through the agent: only it may change the table.
                for message in stage.idle(items, datetime.now(UTC), keep):
                    await thread_input.send(key=message.key, value=message.value)
            except Exception:
                log.exception("overdue check failed; next try in %.0f s", settings.response_check_interval)
