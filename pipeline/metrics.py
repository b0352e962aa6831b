"""Prometheus metrics of a worker, served on ``PANTAU_METRICS_PORT`` (``/metrics``; 0 = not served).

The wiring calls the functions here at a few points: outcomes per batch (``pipeline/app.py``), letters once
the broker took them (``pipeline/kafka/deadletter.py``), bulk requests and their retries
(``pipeline/sinks/elasticsearch.py``), and the consumer group's lag on a timer. Counting costs next to
nothing when nobody scrapes. Label values are few and fixed (stages, reason classes, topics), never post
keys or free text, so the number of series stays small.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from pipeline.kafka.groups import GroupInfo
    from pipeline.settings import Settings
    from pipeline.stages.records import Failed

LAG_INTERVAL = 15.0
"""Seconds between two readings of the consumer lag by a worker that serves metrics."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

PROCESSED = Counter("pantau_posts_processed", "Posts a stage finished with (sent on or indexed)", ["stage"])
DEAD_LETTERED = Counter(
    "pantau_posts_dead_lettered", "Messages sent to the dead-letter topic", ["stage", "reason"]
)
BATCH_SECONDS = Histogram(
    "pantau_batch_seconds", "One batch through a stage, end to end", ["stage"], buckets=LATENCY_BUCKETS
)
MODEL_SECONDS = Histogram("pantau_model_seconds", "Enrichment of one batch (model)", buckets=LATENCY_BUCKETS)
BULK_SECONDS = Histogram(
    "pantau_bulk_seconds", "One Elasticsearch bulk request, answered or failed", buckets=LATENCY_BUCKETS
)
ES_RETRIES = Counter(
    "pantau_es_retries",
    "Bulk requests or documents tried again (reason: connection, 429, 5xx, access, request)",
    ["reason"],
)
CONSUMER_LAG = Gauge(
    "pantau_consumer_lag", "Messages the workers' consumer group has yet to commit", ["topic", "partition"]
)
ALERTS_FIRED = Counter("pantau_alerts_fired", "Alerts a rule raised", ["rule"])
ALERTS_DELIVERED = Counter(
    "pantau_alerts_delivered", "Alert deliveries by channel and outcome", ["channel", "outcome"]
)
LAG_MEASURED = Gauge("pantau_consumer_lag_measured_timestamp_seconds", "When the lag was last read")

_REASONS = (
    ("unexpected", re.compile(r"^unexpected ")),
    ("encoding", re.compile(r"not UTF-8")),
    ("json", re.compile(r"not JSON")),
    ("size", re.compile(r"too large|bytes|over \d[\d,]* characters|limit")),
    ("empty", re.compile(r"empty|tombstone")),
)


def serve(settings: Settings) -> int | None:
    """Start the endpoint (a daemon thread) where a port is set; the port, or None."""
    if not settings.metrics_port:
        return None
    start_http_server(settings.metrics_port, addr=settings.metrics_host)
    return settings.metrics_port


def reason_class(stage: str, reason: str) -> str:
    """A few fixed values for a free-text reason: ``http_400`` for what Elasticsearch refused, the kind of
    bad input for decode failures, ``contract`` for validation, else the stage's own name."""
    if match := re.match(r"HTTP (\d{3})", reason):
        return f"http_{match.group(1)}"
    for name, pattern in _REASONS:
        if pattern.search(reason):
            return name
    return {"validate": "contract"}.get(stage, stage)


def processed(stage: str, count: int) -> None:
    if count:
        PROCESSED.labels(stage).inc(count)


def dead_lettered(failures: Sequence[Failed]) -> None:
    for failed in failures:
        DEAD_LETTERED.labels(failed.stage, reason_class(failed.stage, failed.reason)).inc()


def alert_fired(rule: str) -> None:
    """For the alerting stage: one alert raised by ``rule`` (a rule's name, not its free-text message)."""
    ALERTS_FIRED.labels(rule).inc()


def alert_delivered(channel: str, sent: bool) -> None:
    """For alert delivery: one attempt on ``channel`` (webhook, email, …), sent or failed."""
    ALERTS_DELIVERED.labels(channel, "sent" if sent else "failed").inc()


def es_retry(reason: str, count: int = 1) -> None:
    ES_RETRIES.labels(reason).inc(count)


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        (histogram.labels(*labels) if labels else histogram).observe(time.perf_counter() - start)


def timed_batch(
    stage: str,
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Decorates a batch handler: its duration goes to ``pantau_batch_seconds{stage=...}``."""

    def wrap(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def timed_handler(*args: object) -> None:
            with timed(BATCH_SECONDS, stage):
                await handler(*args)

        return timed_handler

    return wrap


def record_lag(group: GroupInfo) -> None:
    for p in group.partitions:
        CONSUMER_LAG.labels(p.topic, str(p.partition)).set(p.lag)
    LAG_MEASURED.set_to_current_time()


def measure_lag(settings: Settings, bootstrap: str) -> None:
    """Read the group's lag from the broker (blocking: run it in a thread)."""
    from pipeline.kafka.groups import describe_group

    record_lag(describe_group(settings, bootstrap))
