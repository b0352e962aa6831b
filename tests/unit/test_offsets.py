"""Commits on contiguous topics never pass an offset that was not acknowledged (pipeline/kafka/offsets.py)."""

from __future__ import annotations

from pipeline.kafka.offsets import Jump, commit_run, jump


def test_a_commit_runs_from_the_last_commit_and_stops_at_the_first_hole() -> None:
    assert commit_run([565, 566, 567, 570], 565) == [565, 566, 567]
    assert commit_run([10, 11], None) == [10, 11]  # before the first commit
    assert commit_run([], 3) == []


def test_a_commit_waits_for_the_message_at_the_commit() -> None:
    """Faust let the run start one past the commit: a message never delivered was committed over."""
    assert commit_run([566, 567, 568], 565) == []


def test_a_commit_stops_below_a_message_an_agent_still_holds() -> None:
    """The alert deliverer holds offset 0 while 1 and 2 are done; before any commit, too."""
    assert commit_run([1, 2], None, held=0) == []
    assert commit_run([0, 1, 2, 4], None, held=2) == [0, 1]
    assert commit_run([5, 6, 7], 5, held=7) == [5, 6]


def test_a_compacted_topic_keeps_faust_s_one_offset_slack() -> None:
    """Its commit may sit on an offset compaction removed."""
    assert commit_run([6, 7], 5, slack=1) == [6, 7]
    assert commit_run([7], 5, slack=1) == []


def test_a_jump_over_offsets_the_log_holds_is_a_skip() -> None:
    # the read offset was seeded with the commit (565), then 568 came first: 565-567 were never read
    assert jump(565, 566, 568, earliest=0) == Jump(range(565, 565), 565)
    # a real read of 570, then 573: 571 and 572 were passed over
    assert jump(560, 571, 573, earliest=0) == Jump(range(571, 571), 571)


def test_offsets_below_the_commit_were_read_already() -> None:
    assert jump(255, 252, 255, earliest=0) == Jump(range(255, 255), None)
    assert jump(255, 252, 258, earliest=0) == Jump(range(255, 255), 255)


def test_a_jump_over_offsets_retention_removed_is_a_gap() -> None:
    """A worker away longer than retention: its commit is below the log's start, nothing to read."""
    assert jump(100, 101, 500, earliest=500) == Jump(range(100, 500), None)
    # part removed, part still there but passed over
    assert jump(100, 101, 500, earliest=300) == Jump(range(100, 300), 300)


def test_an_unknown_log_start_counts_nothing_as_gone() -> None:
    assert jump(100, 101, 500, earliest=None) == Jump(range(100, 100), 100)
