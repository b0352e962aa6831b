"""Choosing dead letters to show or replay: filters, order across partitions, one per message."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from pipeline.tracking import latest_per_message, select_letters
from schemas.posts import DeadLetter

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _letter(key: str, stage: str, reason: str, minutes: int, value: bytes = b"{}") -> DeadLetter:
    return DeadLetter.model_validate(
        {
            "original": base64.b64encode(value).decode(),
            "original_key": base64.b64encode(key.encode()).decode(),
            "stage": stage,
            "reason": reason,
            "source_topic": "pantau.posts.enriched",
            "failed_at": T0 + timedelta(minutes=minutes),
        }
    )


LETTERS = [  # as two partitions interleave them: not in time order
    _letter("x:3", "index", "HTTP 400 mapper_parsing_exception", 30),
    _letter("x:1", "decode", "not JSON: Expecting value", 0),
    _letter("x:2", "index", "HTTP 400 Mapper_Parsing_Exception", 10),
    _letter("x:2", "index", "HTTP 400 mapper_parsing_exception", 20),  # x:2 replayed, refused again
]


def test_filters_combine_and_the_result_is_in_time_order() -> None:
    chosen = select_letters(LETTERS, stages=["index"], grep="MAPPER_parsing", since=T0 + timedelta(minutes=5))
    assert [(dl.failed_at - T0).seconds // 60 for dl in chosen] == [10, 20, 30]
    assert select_letters(LETTERS, keys=["x:1"]) == [LETTERS[1]]
    assert select_letters(LETTERS) == sorted(LETTERS, key=lambda dl: dl.failed_at)


def test_a_message_refused_twice_is_replayed_once() -> None:
    latest = latest_per_message(LETTERS)
    assert [(dl.original_key, (dl.failed_at - T0).seconds // 60) for dl in latest] == [
        (base64.b64encode(b"x:1").decode(), 0),
        (base64.b64encode(b"x:2").decode(), 20),
        (base64.b64encode(b"x:3").decode(), 30),
    ]


def test_letters_without_a_time_zone_count_as_utc() -> None:
    naive = _letter("x:9", "index", "HTTP 400", 0).model_copy(
        update={"failed_at": datetime(2026, 11, 29, 9, 0)}
    )
    assert select_letters([naive], since=T0 + timedelta(minutes=59)) == [naive]
    assert select_letters([naive], since=T0 + timedelta(minutes=61)) == []
