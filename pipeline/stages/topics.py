"""Emerging-topic discovery as a stage: posts with embeddings in, topic updates out.

Discovery runs for the one partition of ``pantau.topics.input``, so one worker at a time owns it and two
workers never mint different ids for the same story (ids are also derived from the data, so a replay
mints the same ones). Clock: the stream's own time (the newest ``created_at`` seen, never ahead of the wall
clock), so a replay of the same posts mints the same ids. The stage does not write post documents: it
says which topic each post is in, and the index agent writes that onto the post (one writer per document).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import ValidationError

from pipeline.sinks.elasticsearch import IndexAction
from pipeline.stages.records import Failed, Outgoing, Record
from pipeline.topics.discovery import TopicDiscovery
from pipeline.validation import describe_validation_error
from schemas.posts import TopicRef
from schemas.topics import LEGACY_STATE_KEY, TOPIC_KEY_PREFIX, TopicAssignment, TopicInput, TopicState

log = logging.getLogger("pantau.topics")


@dataclass
class TopicUpdate:
    """One re-clustering's output. Labels count as published only once ``confirm`` is called, after
    everything here was acknowledged: a failed publish is simply computed and sent again."""

    topics: list[Outgoing] = field(default_factory=list)
    """``pantau.topics``: each active topic, and a tombstone per retired one."""
    documents: list[IndexAction] = field(default_factory=list)
    """``pantau-topics``: one document per active topic, a delete per retired one."""
    assignments: list[Outgoing] = field(default_factory=list)
    """``pantau.topics.assignments``: posts whose topic or its label changed, or that left every topic."""
    labels: dict[str, TopicRef | None] = field(default_factory=dict)
    retired: set[str] = field(default_factory=set)
    active: int = 0


@dataclass
class TableChanges:
    """What the wiring writes to the Faust tables after an update: the state entries to set and delete,
    and the window entries of posts that left the window."""

    state: dict[bytes, bytes] = field(default_factory=dict)
    state_deleted: list[bytes] = field(default_factory=list)
    window_deleted: list[bytes] = field(default_factory=list)


class TopicStage:
    def __init__(self, window_hours: float, min_size: int, update_interval: float, index: str) -> None:
        self.index = index
        self.window = timedelta(hours=window_hours)
        self.min_size = min_size
        self.update_interval = update_interval
        self.discovery: TopicDiscovery | None = None
        self.created: dict[str, datetime] = {}
        self.published: dict[str, TopicRef] = {}  # post key → the topic its last assignment named
        self.retired: set[str] = set()  # kept until a publish succeeded
        self.clock: datetime | None = None
        self.pending = 0
        self.state_dirty = False
        self.reconciled = False
        self.last_update = time.monotonic()

    def reset(self) -> None:
        """Forget everything: the input partition moved to another worker, which owns discovery now. If
        it comes back, the stage is restored from the tables again (the other worker's state)."""
        self.discovery = None
        self.created, self.published, self.retired = {}, {}, set()
        self.clock, self.pending, self.state_dirty, self.reconciled = None, 0, False, False

    @property
    def restored(self) -> bool:
        return self.discovery is not None

    def advance_clock(self, created_at: datetime, now: datetime | None = None) -> None:
        """The stream clock moves to the newest post, but never past the wall clock: one post dated a
        year ahead would otherwise expire the whole window and retire every topic (such a post waits in
        the window until its time comes)."""
        at = min(created_at, now or datetime.now(UTC))
        self.clock = max(self.clock or at, at)

    def restore(self, entries: list[tuple[bytes, bytes]], saved: list[tuple[bytes, bytes]]) -> None:
        """Discovery rebuilt from the window table's entries and the saved state. Slow for a large window
        (the wiring runs it off the event loop). What cannot be read is left out and logged (written by an
        older release, say): one post or one topic, never the whole stage."""
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
        self.discovery = TopicDiscovery.from_state(
            topic_state, [i.post for i in inputs], vectors, window=self.window, min_size=self.min_size
        )
        self.created = {i.post.key: i.post.created_at for i in inputs}
        for at in self.created.values():
            self.advance_clock(at)
        log.info("topic discovery restored: %d posts, %d topics", len(inputs), len(topic_state.topics))

    def add(self, record: Record) -> tuple[bytes, bytes] | Failed:
        """Take one input; the window entry to keep for it, or why it cannot be taken."""
        assert self.discovery is not None, "restore first"
        value = record.value or b""
        try:
            item = TopicInput.model_validate_json(value)
            # into discovery first: it refuses a bad embedding before the window table keeps it
            self.discovery.add([item.post], item.vector()[None, :])
        except (ValidationError, ValueError) as exc:
            reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            return Failed(record, "topics", reason)
        self.created[item.post.key] = item.post.created_at
        self.advance_clock(item.post.created_at)
        self.pending += 1
        return item.post.key.encode(), value

    def due(self) -> bool:
        return self.pending > 0 and time.monotonic() - self.last_update >= self.update_interval

    def update(self, stale_topic_ids: set[str]) -> TopicUpdate:
        """Re-cluster as of the stream clock. ``stale_topic_ids``: topics an earlier run left in the index
        that this state does not hold (read once after a restart). CPU-bound: run off the event loop."""
        assert self.discovery is not None and self.clock is not None
        active = self.discovery.update(self.clock)
        self.last_update, self.pending, self.state_dirty = time.monotonic(), 0, True
        # a topic folded into another goes like a retired one (its document would show the story twice)
        changes = self.discovery.last_changes
        self.retired |= set(changes.retired) | set(changes.merged)
        self.retired |= stale_topic_ids - set(self.discovery.topics)
        update = TopicUpdate(retired=set(self.retired), active=len(active))
        for topic in active:
            view = topic.public_view()
            update.topics.append(Outgoing(topic.id.encode(), view.model_dump_json().encode()))
            update.documents.append(
                IndexAction(key=topic.id, index=self.index, source=view.model_dump(mode="json"))
            )
        for tid in sorted(self.retired):  # a tombstone tells consumers the topic is gone
            update.topics.append(Outgoing(tid.encode(), None))
            update.documents.append(IndexAction(key=tid, index=self.index, op="delete"))
        refs = {t.id: t.ref() for t in active}
        labels = {k: refs[t] for k, t in self.discovery.assignments().items() if t in refs}
        changed: dict[str, TopicRef | None] = {k: r for k, r in labels.items() if self.published.get(k) != r}
        # posts that left every topic; after a restart, every post of the window (labels of topics that
        # ended while the worker was down are cleared too)
        unlabelled = self.created if not self.reconciled else self.published
        changed |= {k: None for k in unlabelled if k not in labels}
        now = datetime.now(UTC)
        for key, ref in changed.items():
            if key not in self.created:
                continue
            assignment = TopicAssignment(
                post_key=key, created_at=self.created[key], topic=ref, assigned_at=now
            )
            update.assignments.append(Outgoing(key.encode(), assignment.model_dump_json().encode()))
            update.labels[key] = ref
        return update

    def confirm(self, update: TopicUpdate) -> None:
        """Everything in ``update`` was acknowledged: remember what the posts now carry."""
        for key, ref in update.labels.items():
            if ref is None:
                self.published.pop(key, None)
            else:
                self.published[key] = ref
        self.published = {k: r for k, r in self.published.items() if k in self.created}
        self.retired -= update.retired
        self.reconciled = True
        assert self.clock is not None
        log.info(
            "topics updated at %s: %d active, %d retired, %d posts labelled",
            self.clock.isoformat(),
            update.active,
            len(update.retired),
            len(update.labels),
        )

    def failed_publish(self) -> None:
        """The publish failed: try again after the interval even if no post arrives."""
        self.last_update, self.pending = time.monotonic(), max(self.pending, 1)

    def table_changes(self, existing_state_keys: list[bytes]) -> TableChanges | None:
        """After an update: the state to save, and the posts that left the window; None if unchanged."""
        if not self.state_dirty or self.clock is None or self.discovery is None:
            return None
        changes = TableChanges(state=self.discovery.state().to_entries())
        changes.state_deleted = [  # topics gone, a version-1 state
            k
            for k in existing_state_keys
            if k not in changes.state and (k.startswith(TOPIC_KEY_PREFIX) or k == LEGACY_STATE_KEY)
        ]
        cutoff = self.clock - self.window
        for key in [k for k, at in self.created.items() if at < cutoff]:
            del self.created[key]
            changes.window_deleted.append(key.encode())
        self.state_dirty = False
        return changes
