"""The Faust application: two agents between three topics and Elasticsearch.

``enrich``: raw topic → validate + normalise → enrich (model in an executor, batched) → enriched topic.
``index``:  enriched topic → bulk upsert (idempotent ``_id``) → offsets acknowledged only after ES acks.
Anything either agent cannot process goes to the dead-letter topic with its reason; the agents go on.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import faust
import numpy as np
from faust.types import EventT
from pydantic import ValidationError

from pipeline.embedded.stack import Endpoints
from pipeline.enrich.enricher import Enricher
from pipeline.kafka.batches import dead_lettering, process_batches
from pipeline.kafka.config import faust_broker_options
from pipeline.kafka.recovery import ChangelogEndTableManager
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import BulkIndexer, IndexAction, async_client, index_name
from pipeline.topics.stream import register_topic_agent
from pipeline.validation import Rejected, decode_raw_post, describe_validation_error
from schemas.documents import PostDocument
from schemas.posts import DeadLetter, EnrichedPost, RawPost, Stage
from schemas.topics import TopicInput, TopicPost

log = logging.getLogger("pantau.worker")
Enriched = tuple[EnrichedPost | Rejected, np.ndarray | None]


def create_app(settings: Settings, endpoints: Endpoints, model: Enricher) -> faust.App:
    """The worker's app; ``model`` is loaded before, so a worker that cannot enrich never joins."""
    app = faust.App(
        settings.app_id,
        **faust_broker_options(settings, endpoints.kafka),
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(settings.session_timeout / 6, 0.5),
        broker_commit_interval=settings.commit_interval,
        stream_wait_empty=False,  # a stop cancels a running batch, which stays uncommitted (kafka/batches.py)
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        store="memory://",
        TableManager=ChangelogEndTableManager,  # changelog ends a fetch confirms (kafka/recovery.py)
        datadir=str(settings.run_dir / "faust"),  # not the working directory, which may be read-only
        web_enabled=False,
        autodiscover=False,
    )
    raw_topic = app.topic(settings.topic_raw, key_serializer="raw", value_serializer="raw")
    enriched_topic = app.topic(settings.topic_enriched, key_serializer="raw", value_serializer="raw")
    dead_topic = app.topic(settings.topic_dead_letter, key_serializer="raw", value_serializer="raw")

    def make_indexer() -> BulkIndexer:
        return BulkIndexer(
            async_client(settings, endpoints.elasticsearch),
            settings.bulk_backoff,
            settings.bulk_backoff_max,
            settings.bulk_max_attempts,
        )

    topics_input = app.topic(settings.topic_topics_input, key_serializer="raw", value_serializer="raw")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pantau-model")

    async def dead_letter(event: EventT, stage: Stage, reason: str) -> Awaitable[Any]:
        message = event.message
        letter = DeadLetter(
            original=base64.b64encode(message.value or b"").decode(),
            original_key=base64.b64encode(message.key).decode() if message.key else None,
            stage=stage,
            reason=reason,
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            failed_at=datetime.now(UTC),
        )
        log.warning(
            "dead-letter %s/%s@%s [%s] %s", message.topic, message.partition, message.offset, stage, reason
        )
        return await dead_topic.send(key=message.key, value=letter.model_dump_json().encode())

    register_topic_agent(app, settings, topics_input, make_indexer, dead_letter)

    async def run_enrich(model: Enricher, posts: Sequence[RawPost]) -> list[Enriched]:
        """Batch inference off the event loop; a batch that fails is redone post by post."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, model.enrich_with_embeddings, list(posts))
        except Exception:
            log.exception("batch enrichment failed; isolating the post that fails")
        results: list[Enriched] = []
        for post in posts:
            try:
                results.extend(await loop.run_in_executor(executor, model.enrich_with_embeddings, [post]))
            except Exception as exc:
                results.append((Rejected("enrich", f"{type(exc).__name__}: {exc}"), None))
        return results

    @app.agent(raw_topic, name="enrich")
    async def enrich(stream: faust.StreamT[bytes]) -> None:
        async def handle(events: Sequence[EventT]) -> None:
            deliveries: list[Awaitable[Any]] = []
            valid: list[tuple[EventT, RawPost]] = []
            for event in events:
                try:
                    valid.append((event, decode_raw_post(event.message.value)))
                except Rejected as exc:
                    deliveries.append(await dead_letter(event, exc.stage, exc.reason))
            results = await run_enrich(model, [post for _, post in valid]) if valid else []
            for (event, _), (result, embedding) in zip(valid, results, strict=True):
                if isinstance(result, Rejected):
                    deliveries.append(await dead_letter(event, result.stage, result.reason))
                    continue
                key = result.key.encode()
                value = result.model_dump_json(exclude_none=True).encode()
                deliveries.append(await enriched_topic.send(key=key, value=value))
                # an agency's own replies ("terima kasih atas laporannya ...") would make boilerplate topics
                account = model.gazetteer.agency_account(result.author.handle if result.author else None)
                if result.is_public_service and embedding is not None and account is None:
                    item = TopicInput.build(TopicPost.from_enriched(result), embedding)
                    deliveries.append(await topics_input.send(key=key, value=item.model_dump_json().encode()))
            await asyncio.gather(*deliveries)  # the batch is released for acknowledgement after this
            log.info(
                "enriched %d, dead-lettered %d",
                len(valid) - _count_rejected(results),
                len(events) - len(valid) + _count_rejected(results),
            )

        await process_batches(
            stream, settings.batch_size, settings.batch_timeout, handle, dead_lettering(dead_letter, "enrich")
        )

    @app.agent(enriched_topic, name="index")
    async def index(stream: faust.StreamT[bytes]) -> None:
        indexer = make_indexer()

        async def handle(events: Sequence[EventT]) -> None:
            deliveries: list[Awaitable[Any]] = []
            actions: dict[str, tuple[EventT, IndexAction]] = {}  # by key: a batch's redelivery is one write
            for event in events:
                try:
                    post = EnrichedPost.model_validate_json(event.message.value or b"")
                except ValidationError as exc:
                    deliveries.append(await dead_letter(event, "index", describe_validation_error(exc)))
                    continue
                try:
                    source = PostDocument.from_post(post).to_source()
                    where = index_name(settings, post.created_at)
                except Exception as exc:  # a valid message the document model cannot take: keep it
                    log.exception("no document for %s", post.key)
                    reason = f"no document: {type(exc).__name__}: {exc}"
                    deliveries.append(await dead_letter(event, "index", reason))
                    continue
                actions[post.key] = (
                    event,
                    IndexAction(key=post.key, index=where, source=source, op="upsert"),
                )
            failures = await indexer.index([action for _, action in actions.values()])
            for failure in failures:
                event, _ = actions[failure.key]
                reason = f"HTTP {failure.status} {failure.reason}"
                deliveries.append(await dead_letter(event, "index", reason))
            await asyncio.gather(*deliveries)
            log.info("indexed %d, dead-lettered %d", len(actions) - len(failures), len(deliveries))

        try:
            await process_batches(
                stream,
                settings.batch_size * 4,
                settings.batch_timeout,
                handle,
                dead_lettering(dead_letter, "index"),
            )
        finally:
            await indexer.close()

    return app


def _count_rejected(results: Sequence[Enriched]) -> int:
    return sum(1 for r, _ in results if isinstance(r, Rejected))
