"""Emerging topics inside the Faust worker.

The enrich agent sends each public-service post with its embedding to a one-partition topic, so one
worker at a time owns discovery and two workers never mint different ids for the same story (ids are
also derived from the data, so a replay mints the same ones). The window and the topic state live in
Faust tables backed by changelog topics: a restarted or moved worker resumes with the same window and
ids. Clock: the stream's own time (the newest ``created_at`` seen, never ahead of the wall clock), so a
replay of the same posts mints the same ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
import numpy as np
from elasticsearch import NotFoundError
from faust.types import EventT
from pydantic import ValidationError

from pipeline.kafka.batches import DeadLetterSender, dead_lettering, run_batch
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import BulkIndexer, IndexAction, index_name
from pipeline.topics.discovery import TopicDiscovery
from pipeline.validation import describe_validation_error
from schemas.posts import TopicRef
from schemas.topics import LEGACY_STATE_KEY, TOPIC_KEY_PREFIX, TopicInput, TopicState

log = logging.getLogger("pantau.topics")
MISSING_POST_UPDATES = 3
"""Updates that may find a post's document missing before it stops forcing updates of its own: the index
agent may simply not have written it yet, but one it dead-lettered comes only if it is replayed, and
forcing an update for it would re-cluster the window at every interval while the stream is idle. It is
still labelled by every update that comes anyway."""
RECONCILE_LIMIT = 10_000
"""Labelled posts a restarted worker reads back from Elasticsearch (one search page)."""
TICK_KEY = b"__tick__"
"""An empty message the idle timer sends itself: tables change only inside a stream event, so without it an
update the timer made would reach the changelog only with the next post, and a worker killed in between
would come back with the state before that update (and could mint new ids for topics it had published)."""


class TopicStage:
    """Discovery for the partition this worker owns; one lock serialises the agent and the timer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.discovery: TopicDiscovery | None = None
        self.created: dict[str, datetime] = {}
        self.published: dict[str, TopicRef] = {}  # post key → the label its document carries
        self.missing: dict[str, int] = {}  # post key → updates that found no document to label
        self.retired: set[str] = set()
        self.clock: datetime | None = None
        self.pending = 0
        self.state_dirty = False
        self.reconciled = False
        self.last_update = time.monotonic()
        self.lock = asyncio.Lock()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pantau-topics")

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.settings.topics_window_hours)

    def advance_clock(self, created_at: datetime, now: datetime | None = None) -> None:
        """The stream clock moves to the newest post, but never past the wall clock: one post dated a
        year ahead would otherwise expire the whole window and retire every topic (such a post waits in
        the window until its time comes)."""
        at = min(created_at, now or datetime.now(UTC))
        self.clock = max(self.clock or at, at)

    def restore(self, entries: list[tuple[bytes, bytes]], saved: list[tuple[bytes, bytes]]) -> TopicDiscovery:
        """Discovery rebuilt from the window table's entries and the saved state. Run in the executor: a
        day's window takes seconds to parse, longer than the event loop may stall without missing
        heartbeats. What cannot be read is left out and logged (written by an older release, say): one
        post or one topic, never the whole stage."""
        inputs: list[TopicInput] = []
        for key, value in entries:
            try:
                inputs.append(TopicInput.model_validate_json(value))
            except ValidationError as exc:
                log.warning("window entry %r unreadable, left out: %s", key, exc)
        topic_state, problems = TopicState.from_entries(saved)
        for problem in problems:
            log.warning("topic state entry unreadable, left out: %s", problem)
        vectors = np.stack([i.vector() for i in inputs]) if inputs else None
        discovery = TopicDiscovery.from_state(
            topic_state,
            [i.post for i in inputs],
            vectors,
            window=self.window,
            min_size=self.settings.topics_min_size,
        )
        self.created = {i.post.key: i.post.created_at for i in inputs}
        for at in self.created.values():
            self.advance_clock(at)
        log.info("topic discovery restored: %d posts, %d topics", len(inputs), len(topic_state.topics))
        return discovery

    def due(self) -> bool:
        return (
            self.pending > 0 and time.monotonic() - self.last_update >= self.settings.topics_update_interval
        )


def register_topic_agent(
    app: faust.App,
    settings: Settings,
    input_topic: faust.TopicT,
    make_indexer: Callable[[], BulkIndexer],
    dead_letter: DeadLetterSender,
) -> None:
    """Add the window and state tables, the ``topics`` agent and its idle-time update timer to ``app``.

    ``dead_letter`` takes a message the agent cannot read; Faust acknowledges each event as the loop moves
    on, even when its body raised, so nothing may escape the body.
    """
    window_table = app.Table("topic-window", partitions=1, key_type=bytes, value_type=bytes)
    state_table = app.Table("topic-state", partitions=1, key_type=bytes, value_type=bytes)
    output_topic = app.topic(settings.topic_topics, key_serializer="raw", value_serializer="raw")
    stage = TopicStage(settings)
    dead_letter_input = dead_lettering(dead_letter, "topics")
    indexers: list[BulkIndexer] = []

    def indexer() -> BulkIndexer:
        if not indexers:
            indexers.append(make_indexer())
        return indexers[0]

    async def stale_topic_ids(known: set[str]) -> list[str]:
        """Ids in the topics index that this discovery state does not hold."""
        es = indexer().es
        if not await es.indices.exists(index=settings.topics_index):
            return []
        response = await es.search(index=settings.topics_index, size=10_000, source=False)
        return [hit["_id"] for hit in response["hits"]["hits"] if hit["_id"] not in known]

    async def labelled_posts() -> dict[str, TopicRef]:
        """Window posts whose document carries a topic label: what a restarted worker published before,
        so labels of topics that ended while it was down are cleared like any other change."""
        assert stage.clock is not None
        try:
            response = await indexer().es.search(
                index=settings.index_alias,
                size=RECONCILE_LIMIT,
                query={
                    "bool": {
                        "filter": [
                            {"exists": {"field": "topic.id"}},
                            {"range": {"@timestamp": {"gte": (stage.clock - stage.window).isoformat()}}},
                        ]
                    }
                },
                source_includes=["topic"],
            )
        except NotFoundError:  # no post indexed yet
            return {}
        hits = response["hits"]["hits"]
        if len(hits) == RECONCILE_LIMIT:
            log.warning("more than %d labelled posts in the window; the rest keep their labels", len(hits))
        return {h["_id"]: TopicRef.model_validate(h["_source"]["topic"]) for h in hits}

    async def update_and_publish() -> None:
        """Re-cluster as of the stream clock, then publish to Kafka and Elasticsearch (caller holds lock)."""
        assert stage.discovery is not None and stage.clock is not None
        loop = asyncio.get_running_loop()
        active = await loop.run_in_executor(stage.executor, stage.discovery.update, stage.clock)
        stage.last_update, stage.pending, stage.state_dirty = time.monotonic(), 0, True
        # kept until published: a failed publish is retried, and the next update will not list them again;
        # a topic folded into another goes like a retired one (its document would show the story twice)
        changes = stage.discovery.last_changes
        stage.retired |= set(changes.retired) | set(changes.merged)
        if not stage.reconciled:  # what an earlier run left in the index (e.g. before a restart) goes
            stage.retired |= set(await stale_topic_ids(set(stage.discovery.topics) | stage.retired))
            stage.published = await labelled_posts() | stage.published
            stage.reconciled = True
        retired = sorted(stage.retired)
        deliveries: list[Awaitable[Any]] = []
        for topic in active:
            value = topic.public_view().model_dump_json().encode()
            deliveries.append(await output_topic.send(key=topic.id.encode(), value=value))
        for tid in retired:  # a tombstone tells consumers the topic is gone
            deliveries.append(await output_topic.send(key=tid.encode(), value=None))
        await asyncio.gather(*deliveries)
        refs = {t.id: t.ref() for t in active}
        labels = {k: refs[t] for k, t in stage.discovery.assignments().items() if t in refs}
        # posts whose topic or its label changed, and posts that left every topic (their old label would
        # mislead)
        changed: dict[str, TopicRef | None] = {k: r for k, r in labels.items() if stage.published.get(k) != r}
        changed |= {k: None for k in stage.published if k not in labels}
        actions = [
            IndexAction(key=t.id, index=settings.topics_index, source=t.public_view().model_dump(mode="json"))
            for t in active
        ]
        actions += [IndexAction(key=tid, index=settings.topics_index, op="delete") for tid in retired]
        actions += [
            IndexAction(
                key=key,
                index=index_name(settings, stage.created[key]),
                op="update",
                source={"topic": ref.model_dump() if ref else None},
            )
            for key, ref in changed.items()
            if key in stage.created
        ]
        unlabelled, waiting = set(), set()
        for failure in await indexer().index(actions):
            unlabelled.add(failure.key)  # tried again at the next update
            if failure.status == 404 and failure.key in stage.created:  # the post is not indexed (yet)
                stage.missing[failure.key] = stage.missing.get(failure.key, 0) + 1
                if stage.missing[failure.key] >= MISSING_POST_UPDATES:
                    waiting.add(failure.key)
            log.info("topic write %s deferred: %s", failure.key, failure.reason)
        for key in changed.keys() - unlabelled:
            stage.missing.pop(key, None)
        # what the documents now carry: a failed write keeps its old value, so it differs and is retried
        published = {k: r for k, r in labels.items() if k not in unlabelled}
        published |= {k: stage.published[k] for k in unlabelled if k in stage.published}
        stage.published = {k: r for k, r in published.items() if k in stage.created}
        stage.retired &= unlabelled  # a delete Elasticsearch refused is tried again at the next update
        if unlabelled - waiting:  # come round again after the interval even if no post arrives; a post
            # still missing after a few updates (dead-lettered, say) waits for the next update that comes
            # anyway, so an idle stream does not re-cluster every interval for it
            stage.pending = max(stage.pending, 1)
        log.info(
            "topics updated at %s: %d active, %d retired, %d posts labelled",
            stage.clock.isoformat(),
            len(active),
            len(retired),
            len(changed),
        )

    async def publish() -> None:
        """``update_and_publish``; if Kafka or Elasticsearch fails it, the next interval tries again (the
        posts are in the window already, and an update republishes every active topic)."""
        try:
            await update_and_publish()
        except Exception:
            log.exception("topic update failed; trying again in %.0f s", settings.topics_update_interval)
            stage.last_update, stage.pending = time.monotonic(), max(stage.pending, 1)

    @app.agent(input_topic, name="topics")
    async def topics(stream: faust.StreamT[bytes]) -> None:
        # One event at a time: Faust tables can only change while the stream holds a current event.
        async for event in cast(faust.Stream[bytes], stream).events():
            async with stage.lock:
                await run_batch([event], add_to_window, dead_letter_input)

    async def add_to_window(events: Sequence[EventT]) -> None:
        (event,) = events
        if stage.discovery is None:  # the tables are read here, on the loop; parsed in the executor
            entries, saved = list(window_table.items()), list(state_table.items())
            loop = asyncio.get_running_loop()
            stage.discovery = await loop.run_in_executor(stage.executor, stage.restore, entries, saved)
        if event.message.key != TICK_KEY:
            value = event.message.value or b""
            try:
                item = TopicInput.model_validate_json(value)
            except ValidationError as exc:
                await (await dead_letter(event, "topics", describe_validation_error(exc)))
                return
            # into discovery first: it refuses a bad embedding before the window table keeps it
            stage.discovery.add([item.post], item.vector()[None, :])
            window_table[item.post.key.encode()] = value
            stage.created[item.post.key] = item.post.created_at
            stage.advance_clock(item.post.created_at)
            stage.pending += 1
            if stage.due():
                await publish()
        if stage.state_dirty and stage.clock is not None:
            state = stage.discovery.state().to_entries()
            for key in [k for k in state_table if k not in state]:  # topics gone, a version-1 state
                if key.startswith(TOPIC_KEY_PREFIX) or key == LEGACY_STATE_KEY:
                    del state_table[key]
            for key, value in state.items():
                state_table[key] = value
            cutoff = stage.clock - stage.window
            for key in [k for k, at in stage.created.items() if at < cutoff]:
                del stage.created[key]
                stage.missing.pop(key, None)
                window_table.pop(key.encode(), None)
            stage.state_dirty = False

    @app.timer(interval=max(settings.topics_update_interval / 2, 0.5))
    async def flush_idle() -> None:
        """Publish an update when posts stopped arriving before the interval came round."""
        if stage.discovery is None or not stage.due() or stage.lock.locked():
            return
        async with stage.lock:
            if stage.due():
                await publish()
                await input_topic.send(key=TICK_KEY, value=b"")  # so the agent saves the new state
