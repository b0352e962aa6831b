"""Raw records → enriched posts, topic inputs and dead letters: decode, validate, enrich; a tombstone keyed
by a post (its platform deleted it) goes on as a tombstone."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.enrich.enricher import Enricher
from pipeline.stages.records import Failed, Outgoing, Record
from pipeline.validation import Rejected, decode_raw_post, deleted_post_key
from schemas.posts import EnrichedPost, RawPost
from schemas.topics import TopicInput, TopicPost

log = logging.getLogger("pantau.worker")


def discoverable(is_public_service: bool, official_account: object | None) -> bool:
    """What topic discovery sees: public-service posts by citizens; an agency's own replies ("terima kasih
    atas laporannya ...") would make boilerplate topics. Takes the two fields, so an indexed document can be
    judged the same way."""
    return is_public_service and official_account is None


@dataclass
class EnrichOutcome:
    enriched: list[Outgoing] = field(default_factory=list)
    """For the enriched topic: key = post key, value = ``EnrichedPost`` JSON."""
    topic_inputs: list[Outgoing] = field(default_factory=list)
    """For topic discovery: public-service posts by citizens, with their embedding."""
    failed: list[Failed] = field(default_factory=list)
    deleted: int = 0
    """Tombstones passed on: posts their platform deleted (the enriched tombstone removes the document)."""


class EnrichStage:
    """One batch at a time; CPU-bound (the model), so the wiring runs it off the event loop."""

    def __init__(self, model: Enricher) -> None:
        self.model = model

    def process(self, records: Sequence[Record]) -> EnrichOutcome:
        outcome = EnrichOutcome()
        valid: list[tuple[Record, RawPost]] = []
        for record in records:
            if deleted := deleted_post_key(record.key, record.value):
                outcome.enriched.append(Outgoing(deleted.encode(), None))
                outcome.deleted += 1
                continue
            try:
                valid.append((record, decode_raw_post(record.value)))
            except Rejected as exc:
                outcome.failed.append(Failed(record, exc.stage, exc.reason))
        results = self._enrich([post for _, post in valid])
        for (record, _), (result, embedding) in zip(valid, results, strict=True):
            if isinstance(result, Rejected):
                outcome.failed.append(Failed(record, result.stage, result.reason))
                continue
            key = result.key.encode()
            outcome.enriched.append(Outgoing(key, result.model_dump_json(exclude_none=True).encode()))
            if embedding is not None and self._discoverable(result):
                item = TopicInput.build(TopicPost.from_enriched(result), embedding)
                outcome.topic_inputs.append(Outgoing(key, item.model_dump_json().encode()))
        return outcome

    def _discoverable(self, post: EnrichedPost) -> bool:
        return discoverable(post.is_public_service, post.official_account)

    def _enrich(self, posts: list[RawPost]) -> list[tuple[EnrichedPost | Rejected, np.ndarray | None]]:
        """The batch in one model pass; if that raises, post by post, so only the culprit is rejected."""
        if not posts:
            return []
        try:
            return self.model.enrich_with_embeddings(posts)
        except Exception:
            log.exception("batch enrichment failed; isolating the post that fails")
        results: list[tuple[EnrichedPost | Rejected, np.ndarray | None]] = []
        for post in posts:
            try:
                results.extend(self.model.enrich_with_embeddings([post]))
            except Exception as exc:
                results.append((Rejected("enrich", f"{type(exc).__name__}: {exc}"), None))
        return results
