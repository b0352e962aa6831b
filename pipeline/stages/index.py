"""Enriched posts and topic assignments → the bulk actions that write post documents, and what came of them.

The index agent is the only writer of post documents. A post is upserted (a redelivery keeps the topic its
document carries); a topic assignment is merged into the post's document. An assignment can overtake its
post (after an outage the two topics' backlogs interleave): its record is then held, unacknowledged, until
the post arrives in a later batch of the same agent (the two topics are co-partitioned by post key), or
until ``hold_for`` passes, when only the label is given up, never a post. A tombstone keyed by a post (its
platform deleted it) deletes its document.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from pydantic import ValidationError

from pipeline.sinks.elasticsearch import IndexAction, IndexFailure
from pipeline.stages.records import Failed, Record
from pipeline.validation import deleted_post_key, describe_validation_error
from schemas.documents import PostDocument
from schemas.posts import EnrichedPost
from schemas.topics import TopicAssignment

log = logging.getLogger("pantau.worker")
DELETE_MONTHS = 25
"""Monthly indices a deletion is applied to, back from this month: a tombstone does not say when its post
was written, and the default retention keeps 24 months."""
MAX_HELD = 10_000
"""Assignments held at most; past it the oldest are given up (a stuck partition must not grow memory)."""


@dataclass
class Held:
    record: Record
    assignment: TopicAssignment
    since: float


@dataclass
class IndexPlan:
    actions: list[IndexAction] = field(default_factory=list)
    carried: dict[str, list[Record]] = field(default_factory=dict)
    """Action key → the records it writes (a post, its assignment, a duplicate in the batch)."""
    assignments: dict[str, Held] = field(default_factory=dict)
    """Action key → the assignment it carries (a held one too)."""
    failed: list[Failed] = field(default_factory=list)


@dataclass
class IndexOutcome:
    failed: list[Failed] = field(default_factory=list)
    """Records to dead-letter: what Elasticsearch refused for the document itself."""
    hold: list[Record] = field(default_factory=list)
    """Records of this batch to keep unacknowledged after it ends (assignments waiting for their post)."""
    release: list[Record] = field(default_factory=list)
    """Records held by earlier batches that are done now."""
    indexed: int = 0


class IndexStage:
    def __init__(
        self,
        index_for: Callable[[EnrichedPost | TopicAssignment], str],
        posts_topic: str,
        assignments_topic: str,
        hold_for: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        delete_from: Callable[[], list[str]] | None = None,
    ) -> None:
        self.index_for = index_for
        self.delete_from = delete_from or self._recent_indices
        self.posts_topic = posts_topic
        self.assignments_topic = assignments_topic
        self.hold_for = hold_for
        self.clock = clock
        self.held: dict[str, Held] = {}

    def plan(self, records: Sequence[Record]) -> IndexPlan:
        plan = IndexPlan()
        posts: dict[str, tuple[EnrichedPost, dict[str, Any]]] = {}
        assignments: dict[str, Held] = {}
        now = self.clock()
        deletions: dict[str, None] = {}  # ordered set of keys
        for record in records:
            if record.topic == self.posts_topic and record.value is None:
                deleted = deleted_post_key(record.key, None)
                if deleted is None:
                    plan.failed.append(Failed(record, "index", "tombstone without a post key"))
                    continue
                posts.pop(deleted, None)  # deleted after it was written: the deletion wins
                deletions[deleted] = None
                plan.carried.setdefault(deleted, []).append(record)
                continue
            if record.topic == self.assignments_topic:
                try:
                    assignment = TopicAssignment.model_validate_json(record.value or b"")
                except ValidationError as exc:
                    plan.failed.append(Failed(record, "index", describe_validation_error(exc)))
                    continue
                key = assignment.post_key
                assignments[key] = Held(record, assignment, now)  # the later one wins
                plan.carried.setdefault(key, []).append(record)
                continue
            try:
                post = EnrichedPost.model_validate_json(record.value or b"")
            except ValidationError as exc:
                plan.failed.append(Failed(record, "index", describe_validation_error(exc)))
                continue
            try:
                source = PostDocument.from_post(post).to_source()
            except Exception as exc:  # a valid message the document model cannot take: keep it
                log.exception("no document for %s", post.key)
                plan.failed.append(Failed(record, "index", f"no document: {type(exc).__name__}: {exc}"))
                continue
            deletions.pop(post.key, None)  # collected again after its deletion: the later message wins
            posts[post.key] = (post, source)  # a redelivery in the same batch is one write
            plan.carried.setdefault(post.key, []).append(record)
        for key, (post, source) in posts.items():
            carried = assignments.pop(key, None) or self.held.get(key)
            if carried is not None:
                source = {**source, "topic": _topic_field(carried.assignment)}
                plan.assignments[key] = carried
            plan.actions.append(IndexAction(key=key, index=self.index_for(post), source=source, op="upsert"))
        indices = self.delete_from() if deletions else []
        for key in deletions:
            assignments.pop(key, None)  # nothing to label: acknowledged with the deletion
            plan.actions += [IndexAction(key=key, index=index, op="delete") for index in indices]
        for key, alone in assignments.items():
            plan.assignments[key] = alone
            plan.actions.append(
                IndexAction(
                    key=key,
                    index=self.index_for(alone.assignment),
                    source={"topic": _topic_field(alone.assignment)},
                    op="update",
                )
            )
        return plan

    def settle(self, plan: IndexPlan, failures: Sequence[IndexFailure]) -> IndexOutcome:
        """What the bulk request's failures mean for each record of the plan."""
        outcome = IndexOutcome(failed=list(plan.failed))
        refused = {failure.key: failure for failure in failures}
        deleted: set[str] = set()
        for action in plan.actions:
            if action.op == "delete":  # one deletion is an action per monthly index: settled once
                if action.key in deleted:
                    continue
                deleted.add(action.key)
            failure = refused.get(action.key)
            assignment = plan.assignments.get(action.key)
            if failure is None:
                outcome.indexed += action.op == "upsert"
                self._release(action.key, outcome)  # written, or superseded by what was written
                continue
            if action.op == "update" and failure.status == 404 and assignment is not None:
                self._hold(action.key, assignment, outcome)  # the post has not been indexed yet
                continue
            reason = f"HTTP {failure.status} {failure.reason}"
            # a failed deletion: its tombstone, not the post it superseded (replayed, it would come back)
            posts = [
                r
                for r in plan.carried.get(action.key, [])
                if r.topic == self.posts_topic and (action.op != "delete" or r.value is None)
            ]
            for record in posts or plan.carried.get(action.key, []):
                outcome.failed.append(Failed(record, "index", reason))
            self._release(action.key, outcome)  # its post is dead-lettered: nothing left to label
        self._expire(outcome)
        return outcome

    def _recent_indices(self) -> list[str]:
        """The monthly indices of the last ``DELETE_MONTHS`` months, named as ``index_for`` names them."""
        now = datetime.now(UTC)
        year, month = now.year, now.month
        names = []
        for _ in range(DELETE_MONTHS):
            moment = SimpleNamespace(created_at=datetime(year, month, 15, tzinfo=UTC))
            names.append(self.index_for(cast(EnrichedPost, moment)))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return list(dict.fromkeys(names))

    def _release(self, key: str, outcome: IndexOutcome) -> None:
        held = self.held.pop(key, None)
        if held is not None:
            outcome.release.append(held.record)

    def _hold(self, key: str, assignment: Held, outcome: IndexOutcome) -> None:
        if assignment.assignment.topic is None:  # nothing to clear on a document that is not there
            return
        self._release(key, outcome)  # superseded by this later assignment
        self.held[key] = assignment
        outcome.hold.append(assignment.record)

    def _expire(self, outcome: IndexOutcome) -> None:
        now = self.clock()
        overdue = [k for k, h in self.held.items() if now - h.since > self.hold_for]
        excess = len(self.held) - len(overdue) - MAX_HELD
        if excess > 0:
            overdue += sorted((k for k in self.held if k not in overdue), key=lambda k: self.held[k].since)[
                :excess
            ]
        for key in overdue:
            held = self.held.pop(key)
            outcome.release.append(held.record)
            log.warning("post %s not indexed after %.0f s; its topic label is given up", key, self.hold_for)

    def forget(self, keep: Callable[[Record], bool]) -> list[Record]:
        """Drop held records ``keep`` rejects (their partition moved to another worker, which reads them
        again from the last commit); returns them."""
        gone = [k for k, h in self.held.items() if not keep(h.record)]
        return [self.held.pop(k).record for k in gone]


def _topic_field(assignment: TopicAssignment) -> dict[str, str] | None:
    return assignment.topic.model_dump() if assignment.topic else None
