"""Consumer lag: the trend `pantau status` fails on, the samples it keeps, assignments as sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment

from pipeline.kafka.groups import parse_assignment
from pipeline.kafka.lag import LagHistory, LagSample, lag_trend

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def samples(*points: tuple[int, int]) -> list[LagSample]:
    """(seconds ago, lag) pairs."""
    return [LagSample(at=NOW - timedelta(seconds=ago), lag=lag) for ago, lag in points]


def test_a_lag_that_only_grew_over_the_interval_is_growing() -> None:
    assert lag_trend(samples((70, 10), (40, 15), (0, 30)), 60, NOW) == "growing"
    assert lag_trend(samples((70, 10), (40, 15), (20, 15), (0, 30)), 60, NOW) == "growing"  # a pause


def test_a_lag_that_fell_once_or_stayed_is_not_growing() -> None:
    assert lag_trend(samples((70, 10), (40, 5), (0, 30)), 60, NOW) == "steady"
    assert lag_trend(samples((70, 10), (0, 10)), 60, NOW) == "steady"
    assert lag_trend(samples((70, 10), (0, 30)), 60, NOW) == "steady"  # two readings prove nothing
    assert lag_trend(samples((70, 0), (0, 0)), 60, NOW) == "steady"


def test_the_trend_is_unknown_until_a_sample_is_as_old_as_the_interval() -> None:
    assert lag_trend(samples((50, 10), (0, 500)), 60, NOW) == "unknown"
    assert lag_trend([], 60, NOW) == "unknown"


def test_history_keeps_what_the_next_trend_needs_and_survives_a_bad_file(tmp_path: Path) -> None:
    history = LagHistory(tmp_path, "g")
    for ago, lag in ((300, 1), (200, 2), (90, 3), (30, 4)):
        kept = history.add(LagSample(at=NOW - timedelta(seconds=ago), lag=lag), 60)
    assert [s.lag for s in kept] == [3, 4]  # the newest older than 60 s before the last, and the last
    assert [s.lag for s in history.load()] == [3, 4]
    history.path.write_text("{not json")
    assert history.load() == []
    assert [s.lag for s in history.add(LagSample(at=NOW, lag=9), 60)] == [9]


def test_a_read_only_run_directory_leaves_the_trend_unknown(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    history = LagHistory(blocker, "g")  # its directory cannot be created
    assert [s.lag for s in history.add(LagSample(at=NOW, lag=1), 60)] == [1]
    assert history.load() == []


def test_assignments_are_read_from_the_consumer_protocol_or_reported_missing() -> None:
    encoded = ConsumerProtocolAssignment(
        assigned_partitions=[
            ConsumerProtocolAssignment.TopicPartition(topic="raw", partitions=[2, 0]),
            ConsumerProtocolAssignment.TopicPartition(topic="enriched", partitions=[1]),
        ],
        user_data=b"",
        version=0,
    ).encode()
    decoded = ConsumerProtocolAssignment.decode(encoded)
    assert parse_assignment(decoded) == {"enriched": [1], "raw": [0, 2]}
    assert parse_assignment(decoded.to_dict()) == {"enriched": [1], "raw": [0, 2]}
    assert parse_assignment("") is None  # what the embedded broker sends
    assert parse_assignment(None) is None
