"""The worker's stages driven with plain records and no servers: what each decides for each record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np

from pipeline.enrich.enricher import Enricher
from pipeline.sinks.elasticsearch import IndexFailure
from pipeline.stages.enrich import EnrichStage
from pipeline.stages.index import IndexStage
from pipeline.stages.records import Record
from pipeline.stages.topics import TopicStage
from pipeline.validation import Rejected
from schemas.posts import EnrichedPost, RawPost, Sentiment, SentimentLabel, TopicRef
from schemas.topics import TopicAssignment, TopicInput, TopicPost
from schemas.vocab import Category

AT = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


def _raw(i: int, text: str = "jalan rusak di ciruas") -> bytes:
    return json.dumps({"id": f"p{i}", "platform": "x", "text": text, "created_at": AT.isoformat()}).encode()


def _record(value: bytes | None, offset: int = 0, topic: str = "raw", key: bytes | None = None) -> Record:
    return Record(topic, 0, offset, key, value)


def _enriched(post: RawPost, public: bool = True) -> EnrichedPost:
    official = "dpupr" if post.author and post.author.handle == "dpupr_banten" else None
    return EnrichedPost(
        **post.model_dump(exclude={"text"}),
        text=post.text,
        official_account=official,
        sentiment=Sentiment(label=SentimentLabel.NEGATIVE, score=0.9, scores={SentimentLabel.NEGATIVE: 0.9}),
        category=Category.LAYANAN_UMUM,
        category_confidence=0.8,
        is_public_service=public,
        model_version="test",
        processed_at=AT,
    )


class FakeModel:
    """Enriches every post, except that a batch holding ``boom`` raises (as a crashing model would)."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def enrich_with_embeddings(self, posts: list[RawPost]) -> list[tuple[Any, np.ndarray | None]]:
        self.batches.append(len(posts))
        if any("boom" in p.text for p in posts):
            if len(posts) > 1:
                raise RuntimeError("model crashed")
            return [(Rejected("enrich", "cannot encode"), None)]
        return [(_enriched(p), np.ones(4, dtype=np.float32)) for p in posts]


def test_enrich_stage_dead_letters_what_it_cannot_read_and_isolates_a_post_that_breaks_the_model() -> None:
    model = FakeModel()
    stage = EnrichStage(cast(Enricher, model))
    reply = json.loads(_raw(5))
    reply["author"] = {"handle": "dpupr_banten"}
    records = [
        _record(_raw(1), 0),
        _record(b"\xff\xfe not utf-8", 1),
        _record(_raw(2, "boom"), 2),
        _record(json.dumps({"id": "p3", "platform": "x"}).encode(), 3),
        _record(None, 4),
        _record(json.dumps(reply).encode(), 5),
    ]
    outcome = stage.process(records)
    assert [m.key for m in outcome.enriched] == [b"x:p1", b"x:p5"]
    assert [m.key for m in outcome.topic_inputs] == [b"x:p1"]  # an agency's own reply makes no topic
    failed = {f.record.offset: (f.stage, f.reason) for f in outcome.failed}
    assert failed[1][0] == "decode" and "UTF-8" in failed[1][1]
    assert failed[2] == ("enrich", "cannot encode")
    assert failed[3][0] == "validate" and "text" in failed[3][1] and "created_at" in failed[3][1]
    assert failed[4] == ("decode", "empty message (tombstone)")
    assert model.batches == [3, 1, 1, 1]  # the batch raised, then post by post


def _assignment(key: str, topic: str | None, offset: int) -> Record:
    ref = TopicRef(id=topic, label=f"label {topic}") if topic else None
    value = TopicAssignment(post_key=key, created_at=AT, topic=ref, assigned_at=AT).model_dump_json()
    return _record(value.encode(), offset, topic="assignments", key=key.encode())


def _post(i: int, offset: int) -> Record:
    post = _enriched(RawPost.model_validate_json(_raw(i)))
    return _record(post.model_dump_json().encode(), offset, topic="enriched", key=post.key.encode())


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _index_stage(clock: Clock | None = None) -> IndexStage:
    return IndexStage(
        lambda _: "posts-2026.11", "enriched", "assignments", hold_for=60, clock=clock or Clock()
    )


def test_index_stage_merges_an_assignment_into_its_post_and_a_redelivery_is_one_write() -> None:
    stage = _index_stage()
    plan = stage.plan([_post(1, 0), _assignment("x:p1", "t1", 0), _post(1, 1), _post(2, 2)])
    assert [(a.key, a.op) for a in plan.actions] == [("x:p1", "upsert"), ("x:p2", "upsert")]
    assert plan.actions[0].source and plan.actions[0].source["topic"] == {"id": "t1", "label": "label t1"}
    assert plan.actions[1].source and "topic" not in plan.actions[1].source  # keeps what the document has
    outcome = stage.settle(plan, [])
    assert outcome.indexed == 2 and not outcome.failed and not outcome.hold


def test_an_assignment_that_overtakes_its_post_is_held_until_the_post_is_written() -> None:
    clock = Clock()
    stage = _index_stage(clock)
    early = _assignment("x:p1", "t1", 7)
    plan = stage.plan([early, _assignment("x:p9", None, 8)])
    assert [(a.key, a.op) for a in plan.actions] == [("x:p1", "update"), ("x:p9", "update")]
    missing = [IndexFailure(key=k, status=404, reason="document_missing_exception") for k in ("x:p1", "x:p9")]
    outcome = stage.settle(plan, missing)
    assert outcome.hold == [early] and not outcome.failed  # a null label for a missing post: nothing to do
    clock.now = 30
    plan = stage.plan([_post(1, 3)])
    assert plan.actions[0].op == "upsert" and plan.actions[0].source
    assert plan.actions[0].source["topic"]["id"] == "t1"
    outcome = stage.settle(plan, [])
    assert outcome.release == [early] and not stage.held


def test_a_held_assignment_is_given_up_after_hold_for_and_a_refused_post_is_dead_lettered() -> None:
    clock = Clock()
    stage = _index_stage(clock)
    early = _assignment("x:p1", "t1", 7)
    stage.settle(stage.plan([early]), [IndexFailure(key="x:p1", status=404, reason="missing")])
    clock.now = 61
    bad = _post(2, 4)
    outcome = stage.settle(stage.plan([bad]), [IndexFailure(key="x:p2", status=400, reason="mapper_parsing")])
    assert outcome.release == [early]
    assert [(f.record, f.stage) for f in outcome.failed] == [(bad, "index")]
    assert "400" in outcome.failed[0].reason


def test_held_assignments_of_a_partition_that_moved_are_forgotten() -> None:
    stage = _index_stage()
    early = _assignment("x:p1", "t1", 7)
    stage.settle(stage.plan([early]), [IndexFailure(key="x:p1", status=404, reason="missing")])
    assert stage.forget(lambda r: r.tp == ("assignments", 0)) == []
    assert stage.forget(lambda r: False) == [early] and not stage.held


def _topic_input(i: int, cluster: int) -> Record:
    rng = np.random.default_rng(i)
    base = np.zeros(32, dtype=np.float32)
    base[cluster] = 1.0
    vector = base + rng.normal(0, 0.01, 32).astype(np.float32)
    texts = ["banjir di kampung ciruas air masuk rumah", "antrean ktp dukcapil lama sekali di serang"]
    post = TopicPost(key=f"x:p{i}", created_at=AT + timedelta(minutes=i), text=f"{texts[cluster]} {i}")
    value = TopicInput.build(post, vector).model_dump_json().encode()
    return _record(value, i, topic="topics.input", key=post.key.encode())


def test_topic_stage_assigns_posts_once_and_a_restarted_stage_clears_every_window_post() -> None:
    stage = TopicStage(window_hours=24, min_size=3, update_interval=0, index="topics")
    stage.restore([], [])
    entries = []
    for i in range(8):
        added = stage.add(_topic_input(i, 0 if i < 6 else 1))
        assert isinstance(added, tuple)
        entries.append(added)
    bad = stage.add(_record(b'{"post": 1}', 99, topic="topics.input"))
    assert not isinstance(bad, tuple) and bad.stage == "topics"
    update = stage.update(set())
    labelled = {k for k, ref in update.labels.items() if ref is not None}
    assert update.active >= 1 and len(labelled) >= 5
    assert {m.key for m in update.assignments} == {k.encode() for k in update.labels}
    assert all(d.index == "topics" for d in update.documents)
    stage.confirm(update)
    assert stage.update(set()).assignments == []  # nothing changed, nothing sent again

    restarted = TopicStage(window_hours=24, min_size=3, update_interval=0, index="topics")
    restarted.restore(entries, list(stage.discovery.state().to_entries().items()) if stage.discovery else [])
    again = restarted.update({"gone-topic"})
    assert set(again.labels) == {f"x:p{i}" for i in range(8)}  # unlabelled ones get a null: cleared
    assert "gone-topic" in again.retired and (b"gone-topic", None) in {(m.key, m.value) for m in again.topics}


def test_a_tombstone_keyed_by_a_post_is_passed_on_and_deletes_the_document() -> None:
    enrich = EnrichStage(cast(Enricher, FakeModel()))
    outcome = enrich.process(
        [
            _record(None, 0, key=b"x:1346889436626259968"),
            _record(None, 1, key=b"not a post key"),
            _record(None, 2, key=b"myspace:1"),
            _record(None, 3),
        ]
    )
    assert [(m.key, m.value) for m in outcome.enriched] == [(b"x:1346889436626259968", None)]
    assert outcome.deleted == 1 and [f.record.offset for f in outcome.failed] == [1, 2, 3]

    stage = IndexStage(
        lambda item: f"posts-{item.created_at:%Y.%m}", "enriched", "assignments", hold_for=60, clock=Clock()
    )
    gone = _record(None, 5, topic="enriched", key=b"x:p1")
    back = _record(None, 6, topic="enriched", key=b"x:p2")
    plan = stage.plan([_post(1, 4), gone, back, _post(2, 7), _assignment("x:p1", "t1", 8)])
    assert [(a.key, a.op) for a in plan.actions if a.op != "delete"] == [("x:p2", "upsert")]
    deletes = [a for a in plan.actions if a.op == "delete"]
    assert {a.key for a in deletes} == {"x:p1"} and len({a.index for a in deletes}) == len(deletes) == 25
    assert deletes[0].operations() == [{"delete": {"_index": deletes[0].index, "_id": "x:p1"}}]
    outcome = stage.settle(plan, [])
    assert not outcome.failed and not outcome.hold  # the assignment goes with its deleted post
    refused = stage.settle(plan, [IndexFailure(key="x:p1", status=500, reason="boom")])
    assert [(f.record.offset, f.reason) for f in refused.failed] == [(5, "HTTP 500 boom")]
    bad = stage.plan([_record(None, 9, topic="enriched", key=None)])
    assert [(f.record.offset, f.reason) for f in bad.failed] == [(9, "tombstone without a post key")]
