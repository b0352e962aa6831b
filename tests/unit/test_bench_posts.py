"""The bench's posts: drawn from the bundled sample, the same for a seed, fresh ids, times in the last day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.bench.pipeline import bench_posts, median, sample_posts

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_same_seed_same_draw_with_fresh_ids() -> None:
    first = bench_posts(200, seed=1, tag="a", now=NOW)
    again = bench_posts(200, seed=1, tag="b", now=NOW)
    other = bench_posts(200, seed=2, tag="a", now=NOW)
    assert [p.text for p in first] == [p.text for p in again]
    assert [p.text for p in first] != [p.text for p in other]
    assert len({p.key for p in first} | {p.key for p in again}) == 400
    assert all(p.id.startswith("a-") for p in first)


def test_posts_come_from_the_sample_and_fall_in_the_last_day() -> None:
    texts = {post["text"] for post in sample_posts()}
    posts = bench_posts(500, seed=0, tag="t", now=NOW)
    assert all(p.text in texts for p in posts)
    assert all(NOW - timedelta(days=1) <= p.created_at <= NOW for p in posts)
    assert len({p.text for p in posts}) > 200  # a resample, not one post repeated


def test_median_skips_missing_values() -> None:
    assert median([3.0, None, 1.0, float("nan"), 2.0]) == 2.0
    assert median([None]) is None
