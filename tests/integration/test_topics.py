"""Emerging topics on the real stack: a synthetic day with three planted stories in chatter."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.bench.synthetic import STORIES, story_of, synthetic_day
from pipeline.demo import newest_discovery_input, topics_fingerprint, wait_final_topics
from pipeline.report import query_topics
from pipeline.tracking import wait_processed
from tests.integration.conftest import Pipeline

START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # after the other tests' posts: they leave the window
EXPECTED_TERMS = {
    "flood_lebak": {"banjir", "lebak", "rangkasbitung", "cimadur", "mengungsi", "evakuasi"},
    "ktp_queue_tangerang": {"ktp", "e-ktp", "ektp", "antre", "antri", "antrean", "dukcapil", "blanko"},
    "pju_cilegon": {"lampu", "pju", "cilegon", "gelap", "penerangan"},
}


def _raw(key: str, text: str, created_at: datetime) -> dict[str, Any]:
    return {"id": key.removeprefix("x:"), "platform": "x", "text": text, "created_at": created_at.isoformat()}


def _topics_of(pipeline: Pipeline, keys: list[str]) -> dict[str, str | None]:
    pipeline.es.indices.refresh(index=pipeline.settings.index_alias)
    hits = pipeline.es.search(
        index=pipeline.settings.index_alias, size=len(keys), query={"ids": {"values": keys}}, source=["topic"]
    )["hits"]["hits"]
    return {h["_id"]: (h["_source"].get("topic") or {}).get("id") for h in hits}


def _wait_for_update(pipeline: Pipeline, clock: datetime, timeout: float = 240) -> None:
    """Until discovery has published an update that saw every post up to ``clock`` (stream time)."""
    index = pipeline.settings.topics_index
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pipeline.es.indices.exists(index=index):
            pipeline.es.indices.refresh(index=index)
            hits = pipeline.es.search(index=index, size=1, sort=[{"updated_at": "desc"}])["hits"]["hits"]
            if hits and datetime.fromisoformat(hits[0]["_source"]["updated_at"]) >= clock:
                return
        time.sleep(1)
    raise AssertionError(f"no topic update reached {clock.isoformat()} in {timeout}s")


def test_planted_stories_become_separate_stable_topics(pipeline: Pipeline) -> None:
    posts = synthetic_day(seed=0, start=START)
    keys = [pipeline.send_post(_raw(p.key, p.text, p.created_at)) for p in posts]
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=600)
    assert tally.indexed == len(keys), tally

    story_keys = {s.name: [k for k in keys if story_of(k) == s.name] for s in STORIES}
    all_story_keys = [k for ks in story_keys.values() for k in ks]
    # what `pantau demo` waits for before printing: the final update, not the first after indexing
    clock = newest_discovery_input(pipeline.es, pipeline.settings.index_alias, keys)
    assert clock is not None
    assert wait_final_topics(pipeline.es, pipeline.settings.topics_index, clock, quiet=6, wait=240)
    final = topics_fingerprint(pipeline.es, pipeline.settings.topics_index)
    assert final and max(datetime.fromisoformat(t[3]) for t in final) >= clock
    deadline = time.monotonic() + 120  # a post indexed after the update is labelled at the next one
    assigned = _topics_of(pipeline, all_story_keys)
    while sum(1 for t in assigned.values() if t) < 0.8 * len(all_story_keys) and time.monotonic() < deadline:
        time.sleep(1)
        assigned = _topics_of(pipeline, all_story_keys)
    topic_of_story: dict[str, str] = {}
    for story, members in story_keys.items():
        counts = Counter(assigned.get(k) for k in members if assigned.get(k))
        assert counts, f"{story}: no post got a topic"
        tid, n = counts.most_common(1)[0]
        # A story is one topic: nine in ten of its labelled posts in the same one, none split off. How many
        # of its posts get a label at all moved with Kafka's batching while onnx-int8 quantised whole batches
        # (each post is encoded alone since 2026-12-04), and the flood story's near-copies ("update banjir
        # rangkas: ketinggian air 1 meter lebih", four times) sit at the assignment threshold. Measured on
        # this stream then: 26 to 33 of its 40 posts labelled, all in one topic (2026-12-03, 12 runs).
        assert n >= 0.9 * sum(counts.values()), (story, counts)
        assert n >= 0.6 * len(members), (story, counts)
        topic_of_story[story] = tid
    assert len(set(topic_of_story.values())) == 3, topic_of_story

    # A redelivered post (at-least-once) is written again and keeps the label the topics agent gave it.
    flood = topic_of_story["flood_lebak"]
    again = next(p for p in posts if assigned.get(p.key) == flood)
    resent_at = datetime.now(UTC)
    pipeline.send_post(_raw(again.key, again.text, again.created_at))
    assert (
        wait_processed(
            pipeline.settings,
            pipeline.endpoints.kafka,
            pipeline.es,
            [again.key],
            timeout=180,
            since=resent_at,
        ).indexed
        == 1
    )
    assert _topics_of(pipeline, [again.key])[again.key] == flood

    chatter = [k for k in keys if story_of(k) is None]
    chatter_topics = Counter(t for t in _topics_of(pipeline, chatter).values() if t)
    # "big" = half the smallest planted story (25 posts)
    assert all(n <= 12 for n in chatter_topics.values()), chatter_topics
    assert not set(chatter_topics) & set(topic_of_story.values()) or all(
        chatter_topics[t] <= 0.1 * len(story_keys[s]) for s, t in topic_of_story.items()
    )

    rows = {
        r["id"]: r
        for r in query_topics(
            pipeline.es, pipeline.settings.topics_index, timedelta(hours=48), None, None, 50
        )
    }
    labels = {t[0]: t[1] for t in final}
    for story, tid in topic_of_story.items():
        assert rows[tid]["label"] == labels[tid], (story, "relabelled after the final update")
        words = set(" ".join(rows[tid]["terms"] + [rows[tid]["label"]]).replace("·", " ").split())
        assert words & EXPECTED_TERMS[story], (story, rows[tid]["label"], rows[tid]["terms"])

    # The worker dies; the topics it held come back from the changelog with the same ids.
    pipeline.restart_worker(kill=True)
    later = START + timedelta(hours=24, minutes=5)  # newer than every post: the clock must move
    follow_ups = []
    for story in STORIES:
        # copies of posts that carry the story's topic: what is tested is that the ids survive the restart,
        # not the borderline posts (above) that the batching may leave unlabelled
        labelled = [
            p
            for p in posts
            if story_of(p.key) == story.name and assigned.get(p.key) == topic_of_story[story.name]
        ]
        for n, source in enumerate(labelled[:4]):
            follow_ups.append(_raw(f"x:{story.name}-late{n}", source.text + " (update)", later))
    late_keys = [pipeline.send_post(p) for p in follow_ups]
    assert wait_processed(
        pipeline.settings, pipeline.endpoints.kafka, pipeline.es, late_keys, timeout=300
    ).indexed == len(late_keys)
    _wait_for_update(pipeline, later)
    deadline = time.monotonic() + 120  # a post indexed after the update is labelled at the next one
    late = _topics_of(pipeline, late_keys)
    while sum(1 for t in late.values() if t) < 0.75 * len(late_keys) and time.monotonic() < deadline:
        time.sleep(1)
        late = _topics_of(pipeline, late_keys)
    for story in STORIES:
        got = Counter(late.get(k) for k in late_keys if story.name in k and late.get(k))
        assert got and got.most_common(1)[0][0] == topic_of_story[story.name], (
            story.name,
            got,
            topic_of_story,
        )
