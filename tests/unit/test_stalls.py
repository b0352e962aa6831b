"""The watch that finds a partition the worker holds but does not read (pipeline/kafka/stalls.py)."""

from __future__ import annotations

from faust.types import TP

from pipeline.kafka.stalls import PartitionProgress, StallWatch

RAW0, RAW1 = TP("pantau.posts.raw", 0), TP("pantau.posts.raw", 1)


def reading(
    tp: TP,
    committed: int | None,
    end: int,
    skipped: bool = False,
    waiting: bool = False,
    queued: bool = False,
) -> PartitionProgress:
    return PartitionProgress(
        tp=tp, committed=committed, end=end, skipped=skipped, waiting=waiting, queued=queued
    )


def stalled(watch: StallWatch, now: float, *readings: PartitionProgress) -> list[TP]:
    return [r.tp for r in watch.observe(now, 4, readings)]


def test_lag_at_the_same_commit_is_a_stall_after_the_wait() -> None:
    watch = StallWatch(after=10)
    assert stalled(watch, 0, reading(RAW0, 130, 141)) == []
    assert stalled(watch, 9, reading(RAW0, 130, 141)) == []
    assert stalled(watch, 10, reading(RAW0, 130, 141)) == [RAW0]
    # reported once per wait while it stays stalled, not at every reading
    assert stalled(watch, 11, reading(RAW0, 130, 141)) == []
    assert stalled(watch, 20, reading(RAW0, 130, 141)) == [RAW0]


def test_a_commit_that_moves_restarts_the_wait() -> None:
    watch = StallWatch(after=10)
    stalled(watch, 0, reading(RAW0, 130, 141))
    assert stalled(watch, 8, reading(RAW0, 135, 141)) == []
    assert stalled(watch, 17, reading(RAW0, 135, 141)) == []
    assert stalled(watch, 18, reading(RAW0, 135, 141)) == [RAW0]


def test_a_partition_whose_topic_has_messages_queued_is_not_judged() -> None:
    """With a backlog a commit rightly waits while its message sits in a queue: reading it again would
    only repeat work. The stall is judged at the first reading with nothing of its topic queued."""
    watch = StallWatch(after=10)
    for now in (0, 10, 20, 30):
        assert stalled(watch, now, reading(RAW0, 130, 141, queued=True)) == []
    assert stalled(watch, 31, reading(RAW0, 130, 141)) == [RAW0]


def test_a_message_an_agent_holds_at_the_commit_is_no_stall() -> None:
    """A batch waiting out an Elasticsearch outage, an alert waiting for its delivery: busy, not lost."""
    watch = StallWatch(after=10)
    for now in (0, 10, 20, 30):
        assert stalled(watch, now, reading(RAW0, 130, 141, waiting=True)) == []
    assert stalled(watch, 31, reading(RAW0, 130, 141)) == []  # released: its clock starts now
    assert stalled(watch, 41, reading(RAW0, 130, 141)) == [RAW0]


def test_no_lag_is_no_stall() -> None:
    watch = StallWatch(after=10)
    for now in (0, 10, 20, 30):
        assert stalled(watch, now, reading(RAW0, 141, 141), reading(RAW1, None, 0)) == []


def test_a_fetch_that_jumped_is_read_again_at_the_first_idle_reading() -> None:
    watch = StallWatch(after=10)
    assert stalled(watch, 0, reading(RAW0, 565, 570, skipped=True, queued=True)) == []
    assert stalled(watch, 1, reading(RAW0, 565, 570, skipped=True)) == [RAW0]


def test_a_rebalance_starts_every_wait_afresh() -> None:
    """Recovery pauses partitions on purpose; the clock starts when the new generation does."""
    watch = StallWatch(after=10)
    watch.observe(0, 3, [reading(RAW0, 130, 141)])
    assert watch.observe(12, 4, [reading(RAW0, 130, 141)]) == []
    assert stalled(watch, 22, reading(RAW0, 130, 141)) == [RAW0]


def test_a_partition_no_longer_held_is_forgotten() -> None:
    watch = StallWatch(after=10)
    stalled(watch, 0, reading(RAW0, 130, 141), reading(RAW1, 5, 9))
    stalled(watch, 5, reading(RAW1, 5, 9))
    assert stalled(watch, 11, reading(RAW0, 130, 141), reading(RAW1, 5, 9)) == [RAW1]
