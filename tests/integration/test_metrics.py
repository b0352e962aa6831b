"""The supervised worker's Prometheus endpoint, scraped while posts flow."""

from __future__ import annotations

import time
import uuid

from pipeline.tracking import wait_processed
from tests.integration.conftest import Pipeline, make_post
from tests.unit.test_metrics import scrape


def test_the_worker_counts_processed_and_dead_lettered_posts_latencies_and_lag(pipeline: Pipeline) -> None:
    before = scrape(pipeline.metrics_port)
    keys = [
        pipeline.send_post(make_post(f"BPBD Lebak tanggap banjir di Rangkasbitung, laporan ke-{n}"))
        for n in range(3)
    ]
    bad = f"x:bad-{uuid.uuid4().hex[:8]}"
    pipeline.send_raw(b"{not json", bad.encode())
    tally = wait_processed(
        pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [*keys, bad], timeout=180
    )
    assert (tally.indexed, tally.dead_lettered) == (3, 1), tally
    deadline = time.monotonic() + 30  # the lag is read every 15 s
    while True:
        after = scrape(pipeline.metrics_port)
        if any(name == "pantau_consumer_lag" for name, _ in after) or time.monotonic() > deadline:
            break
        time.sleep(1)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("pantau_posts_processed_total", stage="enrich") >= 3
    assert grew("pantau_posts_processed_total", stage="index") >= 3
    assert grew("pantau_posts_dead_lettered_total", stage="decode", reason="json") == 1
    assert grew("pantau_model_seconds_count") >= 1 and grew("pantau_bulk_seconds_count") >= 1
    assert grew("pantau_batch_seconds_count", stage="enrich") >= 1
    lags = {labels: value for (name, labels), value in after.items() if name == "pantau_consumer_lag"}
    assert any(dict(labels)["topic"] == pipeline.settings.topic_raw for labels in lags), after.keys()
