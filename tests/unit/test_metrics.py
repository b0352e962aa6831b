"""The worker's Prometheus endpoint: what the wiring counts is what a scrape reads."""

from __future__ import annotations

import socket

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pipeline import metrics
from pipeline.kafka.groups import GroupInfo, PartitionLag
from pipeline.settings import Settings
from pipeline.stages.records import Failed, Record


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def failed(stage: str, reason: str) -> Failed:
    return Failed(Record("t", 0, 1, b"k", b"v"), stage, reason)  # type: ignore[arg-type]


def test_reasons_are_classed_into_a_few_fixed_values() -> None:
    assert metrics.reason_class("index", "HTTP 400 mapper_parsing_exception: failed") == "http_400"
    assert metrics.reason_class("decode", "not JSON: Expecting value at line 1 column 1") == "json"
    assert metrics.reason_class("decode", "not UTF-8: invalid start byte at byte 3") == "encoding"
    assert metrics.reason_class("validate", "text: field required") == "contract"
    assert metrics.reason_class("enrich", "unexpected RuntimeError: boom") == "unexpected"
    assert metrics.reason_class("topics", "something new") == "topics"


def test_the_endpoint_serves_outcomes_latencies_retries_and_lag() -> None:
    port = free_port()
    assert metrics.serve(Settings(metrics_port=0)) is None  # off unless a port is set
    assert metrics.serve(Settings(metrics_port=port, metrics_host="127.0.0.1")) == port
    before = scrape(port)

    metrics.processed("enrich", 30)
    metrics.dead_lettered(
        [failed("decode", "not JSON: x"), failed("index", "HTTP 400 bad"), failed("decode", "not JSON")]
    )
    with metrics.timed(metrics.MODEL_SECONDS):
        pass
    metrics.es_retry("429")
    metrics.alert_fired("lonjakan_keluhan")
    metrics.alert_delivered("webhook", sent=False)
    metrics.record_lag(
        GroupInfo(
            group="g",
            state="Stable",
            members=[],
            partitions=[PartitionLag(topic="pantau.posts.raw", partition=2, committed=5, end=12, lag=7)],
        )
    )
    after = scrape(port)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert grew("pantau_posts_processed_total", stage="enrich") == 30
    assert grew("pantau_posts_dead_lettered_total", stage="decode", reason="json") == 2
    assert grew("pantau_posts_dead_lettered_total", stage="index", reason="http_400") == 1
    assert grew("pantau_model_seconds_count") == 1
    assert grew("pantau_es_retries_total", reason="429") == 1
    assert grew("pantau_alerts_fired_total", rule="lonjakan_keluhan") == 1
    assert grew("pantau_alerts_delivered_total", channel="webhook", outcome="failed") == 1
    assert after[("pantau_consumer_lag", (("partition", "2"), ("topic", "pantau.posts.raw")))] == 7
