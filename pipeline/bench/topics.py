"""Throughput of the topic stage at window sizes the model cannot embed quickly: synthetic vectors.

Vectors mimic mE5's geometry (a large shared direction, a weaker per-story direction, noise) and texts
share a few story words over a pseudo-word background, so both halves of the similarity do real work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from pipeline.bench.model import peak_rss_mb
from pipeline.topics.discovery import TopicDiscovery
from schemas.topics import TopicPost

if TYPE_CHECKING:
    from rich.console import Console

DIM = 384


@dataclass(frozen=True)
class TopicsBenchRow:
    window: int
    add_rate: float  # posts/s through ``add`` (tokenising included)
    update_s: float  # first update: everything clustered from scratch
    second_s: float  # second update after 1% new posts (previous members seed it; not much cheaper)
    topics: int
    planted_found: int
    planted: int
    peak_rss_mb: float


def synthetic_window(
    n: int, *, stories: int = 20, story_size: int = 60, seed: int = 0, start: datetime | None = None
) -> tuple[list[TopicPost], np.ndarray, np.ndarray]:
    """``n`` posts over 24 h: ``stories`` planted groups, the rest background. Returns posts, unit
    embeddings and the planted story of each post (-1 for background)."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2025, 1, 15, tzinfo=UTC)
    common = rng.standard_normal(DIM)
    common /= np.linalg.norm(common)
    dirs = rng.standard_normal((stories, DIM))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    story = np.full(n, -1)
    story[: stories * story_size] = np.repeat(np.arange(stories), story_size)
    rng.shuffle(story)
    noise = rng.standard_normal((n, DIM)) / np.sqrt(DIM)
    emb = 2.5 * common + noise
    emb[story >= 0] += 0.9 * dirs[story[story >= 0]]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    words = np.array(
        [f"kata{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676)}" for i in range(20_000)]
    )
    story_words = words[: stories * 4].reshape(stories, 4)
    seconds = rng.uniform(0, 86_399, n)
    posts: list[TopicPost] = []
    for i in range(n):
        toks = list(words[rng.integers(100, len(words), 8)])
        if story[i] >= 0:
            toks[:3] = story_words[story[i], rng.choice(4, 3, replace=False)]
        posts.append(
            TopicPost(
                key=f"x:b{i}", created_at=start + timedelta(seconds=float(seconds[i])), text=" ".join(toks)
            )
        )
    return posts, emb.astype(np.float32), story


def _planted_found(disc: TopicDiscovery, posts: Sequence[TopicPost], story: np.ndarray) -> int:
    """Planted stories with ≥ 80% of their posts in one topic."""
    assigned = disc.assignments()
    found = 0
    for s in range(int(story.max()) + 1):
        tids = [assigned.get(posts[i].key) for i in np.flatnonzero(story == s).tolist()]
        best = max((tids.count(t) for t in set(tids) if t is not None), default=0)
        found += best >= 0.8 * len(tids)
    return found


def run_topics_bench(
    console: Console | None = None, sizes: Sequence[int] = (10_000, 100_000), batch: int = 1_000
) -> list[TopicsBenchRow]:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows: list[TopicsBenchRow] = []
    for n in sizes:
        extra = max(n // 100, 1)
        posts, emb, story = synthetic_window(n + extra)
        order = np.argsort([p.created_at.timestamp() for p in posts], kind="stable")
        posts = [posts[i] for i in order]
        emb, story = emb[order], story[order]
        now = posts[n - 1].created_at
        disc = TopicDiscovery()
        t0 = time.perf_counter()
        for s in range(0, n, batch):
            disc.add(posts[s : min(s + batch, n)], emb[s : min(s + batch, n)])
        add_rate = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        disc.update(now)
        update_s = time.perf_counter() - t0
        disc.add(posts[n:], emb[n:])
        t0 = time.perf_counter()
        topics = disc.update(posts[-1].created_at)
        second_s = time.perf_counter() - t0
        found = _planted_found(disc, posts, story)
        planted = int(story.max()) + 1
        rows.append(
            TopicsBenchRow(n, add_rate, update_s, second_s, len(topics), found, planted, peak_rss_mb())
        )
        console.log(f"window {n}: update {update_s:.1f}s, 2nd update {second_s:.1f}s")
    table = Table(title="topic discovery (synthetic embeddings)")
    for col in (
        "window",
        "add posts/s",
        "update s",
        "2nd update s",
        "topics",
        "planted found",
        "peak RSS MB",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r.window:,}",
            f"{r.add_rate:,.0f}",
            f"{r.update_s:.2f}",
            f"{r.second_s:.2f}",
            str(r.topics),
            f"{r.planted_found}/{r.planted}",
            f"{r.peak_rss_mb:.0f}",
        )
    console.print(table)
    return rows
