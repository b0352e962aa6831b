"""`pantau bench pipeline` on tiny numbers against the session's stack: every post accounted for, the
figures present and in order. Speeds are printed by the bench, never asserted."""

from __future__ import annotations

import pytest
from rich.console import Console

from pipeline.bench.pipeline import PipelineBenchConfig, run_pipeline_bench
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration


def test_bench_accounts_for_every_post(pipeline: Pipeline) -> None:
    config = PipelineBenchConfig(posts=40, repeat=1, duration=2.0, warmup=8, fractions=(0.25, 0.8))
    report = run_pipeline_bench(pipeline.settings, pipeline.endpoints, config, Console(quiet=True))

    [classify], [stream] = report.classify, report.stream
    assert classify.posts == classify.enriched == 40 and classify.posts_per_s > 0
    assert (stream.sent, stream.searchable, stream.dead_lettered, stream.lost) == (40, 40, 0, 0)
    assert stream.seconds > 0 and report.stream_posts_per_s == stream.posts_per_s > 0
    assert report.ratio == pytest.approx(stream.posts_per_s / classify.posts_per_s)

    assert [point.load for point in report.latency] == ["25%", "80%"]
    assert report.latency[0].rate < report.latency[1].rate
    for point in report.latency:
        [run] = point.runs
        assert run.sent == run.searchable >= 1 and run.lost == run.dead_lettered == 0
        assert run.p50 is not None and run.p95 is not None and run.p99 is not None and run.max is not None
        assert 0 < run.p50 <= run.p95 <= run.p99 <= run.max
        assert run.enriched_p50 is not None and 0 < run.enriched_p50 < run.max
