"""Topic quality on the labelled multi-story stream (:mod:`pipeline.bench.stream`): purity, story recall,
id handovers.

The posts go through the worker's own enricher (onnx-int8 embeddings, categories, the public-service
filter), then into :class:`~pipeline.topics.discovery.TopicDiscovery` in time order with an update every
``update_every`` posts, as the topics stage runs on a live stream.

- purity of a topic: the share of its posts from its largest story (chatter is no story);
- story recall: the share of a story's posts in the topic that holds most of them;
- a story is *found* when one topic holds ≥ half of it at purity ≥ 0.8;
- a *catch-all*: a topic of ≥ 10 posts at purity < 0.6; a *dialect topic*: one whose posts are mostly
  Sundanese or Javanese-Serang chatter;
- an *id handover*: an update gives an id that named a story to a cluster whose largest story is another
  one, or chatter; or folds a story's topic into another story's (a topic that began as mostly chatter and
  grew into a story is no handover).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from pipeline.bench.stream import SPEC, labelled_stream, register_of
from pipeline.topics.discovery import TopicDiscovery
from schemas.topics import TopicPost

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.enrich.enricher import Enricher

CHATTER = "(chatter)"


@dataclass(frozen=True)
class TopicRow:
    seed: int
    label: str
    size: int
    story: str  # largest story, or CHATTER
    purity: float
    recall: float  # of that story (0 for chatter)
    dialect: bool


@dataclass
class SeedResult:
    seed: int
    topics: list[TopicRow] = field(default_factory=list)
    recall: dict[str, float] = field(default_factory=dict)  # story → best recall
    found: int = 0
    handovers: int = 0
    handed: list[str] = field(default_factory=list)  # "id: story → story" for each handover
    kept: int = 0
    sent: int = 0


def embed_stream(enricher: Enricher, posts: Sequence[TopicPost]) -> tuple[list[TopicPost], np.ndarray]:
    """The posts the topics stage would get (public service, no official account) with their vectors."""
    from pipeline.validation import validate_raw_post
    from schemas.posts import EnrichedPost

    raws = [
        validate_raw_post(
            {"id": p.key.removeprefix("x:"), "platform": "x", "text": p.text, "created_at": p.created_at}
        )
        for p in posts
    ]
    kept: list[TopicPost] = []
    vectors: list[np.ndarray] = []
    for at in range(0, len(raws), 32):
        for result, vec in enricher.enrich_with_embeddings(raws[at : at + 32]):
            if (
                isinstance(result, EnrichedPost)
                and vec is not None
                and result.is_public_service
                and result.official_account is None
            ):
                kept.append(TopicPost.from_enriched(result))
                vectors.append(vec)
    return kept, np.stack(vectors)


def _majority(keys: Sequence[str], story_of: dict[str, str | None]) -> tuple[str, int]:
    votes = Counter(story_of.get(k) or CHATTER for k in keys)
    stories = [(n, s) for s, n in votes.items() if s != CHATTER]
    best_n, best = max(stories, default=(0, CHATTER))
    if votes[CHATTER] > best_n:
        return CHATTER, votes[CHATTER]
    return best, best_n


def replay(
    seed: int,
    posts: list[TopicPost],
    emb: np.ndarray,
    story_of: dict[str, str | None],
    sent: int,
    update_every: int = SPEC.update_every,
) -> SeedResult:
    """Feed in time order with periodic updates; score the final update and count id handovers."""
    order = sorted(range(len(posts)), key=lambda i: (posts[i].created_at, posts[i].key))
    disc = TopicDiscovery(window=timedelta(hours=48))
    named: dict[str, str] = {}  # topic id → the story it named at its last update
    result = SeedResult(seed, kept=len(posts), sent=sent)
    members: dict[str, list[str]] = {}
    for at in range(0, len(order), update_every):
        idx = order[at : at + update_every]
        disc.add([posts[i] for i in idx], emb[idx])
        topics = disc.update(max(posts[i].created_at for i in order[: at + len(idx)]))
        members = {t.id: [] for t in topics}
        for key, tid in disc.assignments().items():
            members.setdefault(tid, []).append(key)
        for tid, keys in members.items():
            story, _ = _majority(keys, story_of)
            if tid in named and named[tid] not in (story, CHATTER):
                result.handovers += 1
                result.handed.append(f"{tid}: {named[tid]} → {story}")
            named[tid] = story
        for old, new in disc.last_changes.merged.items():  # the id that lived on must name old's story
            if old in named and new in named and named[old] != named[new]:
                result.handovers += 1
                result.handed.append(f"{old} merged into {new}: {named[old]} → {named[new]}")
    totals = Counter(s for s in story_of.values() if s is not None)
    best: dict[str, float] = dict.fromkeys(totals, 0.0)
    labels = {t.id: t.label for t in disc.topics.values()}
    for tid, keys in sorted(members.items(), key=lambda kv: -len(kv[1])):
        story, n = _majority(keys, story_of)
        recall = n / totals[story] if story != CHATTER else 0.0
        dialect = Counter(register_of(k) for k in keys)
        result.topics.append(
            TopicRow(
                seed,
                labels[tid],
                len(keys),
                story,
                n / len(keys) if story != CHATTER else 0.0,
                recall,
                dialect["su"] + dialect["jv"] > len(keys) / 2,
            )
        )
        if story != CHATTER:
            best[story] = max(best[story], recall)
            if n / len(keys) >= 0.8 and recall >= 0.5:
                result.found += 1
    result.recall = best
    return result


def run_quality(enricher: Enricher, seeds: Sequence[int]) -> list[SeedResult]:
    results: list[SeedResult] = []
    for seed in seeds:
        posts, story_of = labelled_stream(seed)
        kept, emb = embed_stream(enricher, posts)
        results.append(replay(seed, kept, emb, story_of, sent=len(posts)))
    return results


def render_quality(console: Console, results: Sequence[SeedResult], per_topic: bool = True) -> None:
    from rich.table import Table

    for res in results if per_topic else ():
        table = Table(
            title=f"topics on the labelled stream, seed {res.seed} ({res.kept} of {res.sent} posts kept)"
        )
        for col in ("topic", "size", "largest story", "purity", "story recall", "dialect"):
            table.add_column(col, justify="right" if col in ("size", "purity", "story recall") else "left")
        for row in res.topics:
            table.add_row(
                row.label,
                str(row.size),
                row.story,
                f"{row.purity:.2f}",
                f"{row.recall:.2f}" if row.story != CHATTER else "-",
                "yes" if row.dialect else "",
            )
        console.print(table)
    summary = Table(title="summary (stories: " + str(len(SPEC.stories)) + ")")
    for col in (
        "seed",
        "topics",
        "mean purity",
        "mean story recall",
        "stories found",
        "catch-alls",
        "dialect topics",
        "id handovers",
    ):
        summary.add_column(col, justify="right")
    for res in results:
        rows = res.topics
        summary.add_row(
            str(res.seed),
            str(len(rows)),
            f"{np.mean([r.purity for r in rows]) if rows else 0:.2f}",
            f"{np.mean(list(res.recall.values())):.2f}",
            f"{res.found}/{len(SPEC.stories)}",
            str(sum(r.size >= 10 and r.purity < 0.6 for r in rows)),
            str(sum(r.dialect for r in rows)),
            str(res.handovers),
        )
    console.print(summary)
