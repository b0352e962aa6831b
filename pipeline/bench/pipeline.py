"""`pantau bench pipeline`: the stream against `pantau classify` on the same posts, and how long a post
takes from `produce` to searchable at steady loads below the stream's capacity.

It prints numbers and asserts none. Posts are drawn from the bundled sample, so they have the length and
mix of Banten posts; every run sends fresh ids, so no post is found because an earlier run indexed it.
"Searchable" means found by an ids search without a forced refresh, as a user's query would find it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch, NotFoundError
from kafka.producer.future import FutureRecordMetadata
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from pipeline.embedded.stack import EmbeddedStack, Endpoints, wait_for_worker_log
from pipeline.kafka.producer import make_producer
from pipeline.report import progress_bar
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import sync_client
from pipeline.tracking import DeadLetterReader, dead_letter_key
from pipeline.validation import validate_raw_post
from schemas.posts import RawPost

DAY_SECONDS = 86_400.0
WORKER_START_TIMEOUT = 300.0
"""Seconds to wait for the private stack's worker (model load and group join on two busy cores)."""
ID_CHUNK = 1_000
"""Ids per search: well inside Elasticsearch's default ``index.max_result_window`` and terms limits."""


class BenchError(Exception):
    """The bench could not measure (classify failed, the worker indexed nothing): said, not a traceback."""


class PipelineBenchConfig(BaseModel):
    posts: int = Field(2000, ge=1, description="posts per classify run and per stream run")
    repeat: int = Field(3, ge=1, description="runs of each measurement; the table shows their median")
    rates: tuple[float, ...] = Field(
        (), description="posts/s of the latency runs; empty: the fractions of the measured stream capacity"
    )
    fractions: tuple[float, ...] = (0.25, 0.5, 0.8)
    duration: float = Field(20.0, gt=0, description="seconds of steady sending per latency run")
    warmup: int = Field(32, ge=1, description="posts sent and awaited before anything is timed")
    poll_interval: float = Field(0.05, gt=0, description="seconds between searches: the latency resolution")
    stall_timeout: float = Field(
        60.0, gt=0, description="a run stops waiting when no post became searchable for this long"
    )
    seed: int = 0


# -- posts ------------------------------------------------------------------------------------------
def sample_posts() -> list[dict[str, Any]]:
    text = resources.files("pipeline.samples").joinpath("posts.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def bench_posts(count: int, seed: int, tag: str, now: datetime) -> list[RawPost]:
    """``count`` posts drawn with replacement from the bundled sample, the same draw for the same seed,
    each with the id ``<tag>-<n>`` and a time in the day before ``now`` (inside the topic window)."""
    rng = random.Random(seed)
    sample = sample_posts()
    posts: list[RawPost] = []
    for n in range(count):
        data = dict(rng.choice(sample))
        data["id"] = f"{tag}-{n:06d}"
        data["created_at"] = (now - timedelta(seconds=rng.uniform(0, DAY_SECONDS))).isoformat()
        posts.append(validate_raw_post(data))
    return posts


# -- results ----------------------------------------------------------------------------------------
class ClassifyRun(BaseModel):
    posts: int
    enriched: int
    seconds: float
    posts_per_s: float


class Accounted(BaseModel):
    """Every post sent ends in exactly one of: searchable, dead-lettered, lost (neither, in time)."""

    sent: int
    searchable: int
    dead_lettered: int
    lost: int


class StreamRun(Accounted):
    seconds: float = Field(description="first send to the last post searchable")
    posts_per_s: float


class LatencyRun(Accounted):
    rate: float = Field(description="posts/s asked for")
    achieved_rate: float = Field(description="posts/s actually sent")
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    enriched_p50: float | None = Field(
        description="median send → enriched (the worker's processed_at): queueing, batch wait, inference"
    )


class LatencyPoint(BaseModel):
    load: str = Field(description="'25 %' of the measured capacity, or 'given' for --rate")
    rate: float
    runs: list[LatencyRun]
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    enriched_p50: float | None
    lost: int = Field(description="over all runs")
    dead_lettered: int = Field(description="over all runs")


class PipelineBenchReport(BaseModel):
    posts: int
    repeat: int
    worker: dict[str, str] = Field(description="the settings that shape the numbers")
    classify: list[ClassifyRun]
    stream: list[StreamRun]
    classify_posts_per_s: float
    stream_posts_per_s: float
    ratios: list[float] = Field(description="stream / classify of each run, the two measured together")
    ratio: float = Field(description="their median")
    latency: list[LatencyPoint]


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(present) if present else None


def latency_point(load: str, rate: float, runs: list[LatencyRun]) -> LatencyPoint:
    return LatencyPoint(
        load=load,
        rate=rate,
        runs=runs,
        p50=median([r.p50 for r in runs]),
        p95=median([r.p95 for r in runs]),
        p99=median([r.p99 for r in runs]),
        max=median([r.max for r in runs]),
        enriched_p50=median([r.enriched_p50 for r in runs]),
        lost=sum(r.lost for r in runs),
        dead_lettered=sum(r.dead_lettered for r in runs),
    )


# -- measuring --------------------------------------------------------------------------------------
class Searchable:
    """When each sent post first became searchable. Pending ids are searched (no refresh forced) until
    found; a post counts as found when the answer that holds it arrives."""

    def __init__(self, es: Elasticsearch, alias: str) -> None:
        self.es = es
        self.alias = alias
        self.sent: dict[str, float] = {}
        self.sent_wall: dict[str, float] = {}
        self.found: dict[str, float] = {}
        self.enriched_after: dict[str, float] = {}
        self.pending: set[str] = set()

    def mark_sent(self, key: str) -> None:
        self.sent[key] = time.monotonic()
        self.sent_wall[key] = time.time()
        self.pending.add(key)

    def poll(self) -> None:
        keys = list(self.pending)
        for start in range(0, len(keys), ID_CHUNK):
            chunk = keys[start : start + ID_CHUNK]
            try:
                response = self.es.search(
                    index=self.alias,
                    query={"ids": {"values": chunk}},
                    size=len(chunk),
                    source={"includes": ["processed_at"]},
                    track_total_hits=False,
                )
            except NotFoundError:  # no index yet: nothing is searchable
                return
            now = time.monotonic()
            for hit in response["hits"]["hits"]:
                key = hit["_id"]
                if key not in self.pending:
                    continue
                self.pending.discard(key)
                self.found[key] = now
                processed = (hit.get("_source") or {}).get("processed_at")
                if processed:
                    self.enriched_after[key] = (
                        datetime.fromisoformat(processed).timestamp() - self.sent_wall[key]
                    )

    def latencies(self) -> list[float]:
        return [self.found[key] - self.sent[key] for key in self.found]


def _percentiles(values: list[float]) -> tuple[float | None, float | None, float | None, float | None]:
    if not values:
        return None, None, None, None
    p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
    return p50, p95, p99, max(values)


class PipelineBench:
    """The measurements, against a running pipeline (a worker must be consuming the raw topic)."""

    def __init__(
        self, settings: Settings, endpoints: Endpoints, config: PipelineBenchConfig, console: Console
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.config = config
        self.console = console
        self.es = sync_client(settings, endpoints.elasticsearch)
        self.producer = make_producer(settings, endpoints.kafka)
        self.nonce = uuid.uuid4().hex[:6]
        self.runs = 0

    def close(self) -> None:
        self.producer.close()
        self.es.close()

    def posts(self, count: int) -> list[RawPost]:
        self.runs += 1
        return bench_posts(count, self.config.seed, f"bench{self.nonce}r{self.runs}", datetime.now(UTC))

    # -- sending and waiting ---------------------------------------------------------------------
    def _send(self, post: RawPost, watch: Searchable) -> FutureRecordMetadata:
        value = post.model_dump_json(exclude_none=True).encode()
        future = self.producer.send(self.settings.topic_raw, key=post.key.encode(), value=value)
        watch.mark_sent(post.key)
        return future

    def _confirm(self, futures: list[FutureRecordMetadata]) -> None:
        self.producer.flush()
        for future in futures:
            future.get(timeout=60)  # raises if the broker refused a post: that is not a lost post

    def _wait(self, watch: Searchable, interval: float, on_poll: Callable[[], None], stall: float) -> None:
        """Poll until every post is searchable or none became so for ``stall`` seconds."""
        progress_at = time.monotonic()
        while watch.pending:
            before = len(watch.pending)
            watch.poll()
            on_poll()
            if len(watch.pending) < before:
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > stall:
                break
            if watch.pending:
                time.sleep(interval)

    def _accounted(self, watch: Searchable) -> dict[str, int]:
        dead = self._dead_lettered(watch.pending)
        return {
            "sent": len(watch.sent),
            "searchable": len(watch.found),
            "dead_lettered": len(dead),
            "lost": len(watch.pending) - len(dead),
        }

    def _dead_lettered(self, keys: set[str]) -> set[str]:
        if not keys:
            return set()
        reader = DeadLetterReader(self.settings, self.endpoints.kafka)
        try:
            letters = reader.read_all(idle=1.0, timeout=30.0)
        finally:
            reader.close()
        return {key for letter in letters if (key := dead_letter_key(letter) or "") in keys}

    # -- phases ----------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """A first batch through every stage (model, producer, bulk client, index creation) untimed."""
        watch = Searchable(self.es, self.settings.index_alias)
        with self.console.status(f"warm-up: {self.config.warmup} posts through the worker"):
            self._confirm([self._send(post, watch) for post in self.posts(self.config.warmup)])
            self._wait(watch, 0.2, lambda: None, max(self.config.stall_timeout, 120.0))
        if watch.pending:
            missing = len(watch.pending)
            raise BenchError(
                f"{missing} of {self.config.warmup} warm-up posts never became searchable: is a worker "
                f"consuming {self.settings.topic_raw}? (`pantau status`)"
            )

    def classify_run(self, posts: list[RawPost], workdir: Path, label: str) -> ClassifyRun:
        """``pantau classify --input --output`` as a whole process, model load included."""
        source, target = workdir / "posts.jsonl", workdir / "enriched.jsonl"
        source.write_text("".join(p.model_dump_json(exclude_none=True) + "\n" for p in posts))
        argv = [
            sys.executable,
            "-m",
            "pipeline.cli",
            "classify",
            "--input",
            str(source),
            "--output",
            str(target),
        ]
        with self.console.status(f"{label}: pantau classify on {len(posts)} posts (model load included)"):
            start = time.monotonic()
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            seconds = time.monotonic() - start
        if done.returncode not in (0, 3):  # 3: lines rejected, the others written
            raise BenchError(f"pantau classify exited with {done.returncode}:\n{done.stderr[-2000:]}")
        with open(target, encoding="utf-8") as handle:
            enriched = sum(1 for line in handle if line.strip())
        return ClassifyRun(
            posts=len(posts), enriched=enriched, seconds=seconds, posts_per_s=len(posts) / seconds
        )

    def stream_run(self, posts: list[RawPost], label: str) -> StreamRun:
        """All posts produced at once; the clock runs from the first send to the last post searchable."""
        watch = Searchable(self.es, self.settings.index_alias)
        with progress_bar(self.console) as progress:
            task = progress.add_task(f"{label}: produced → searchable", total=len(posts))
            start = time.monotonic()
            self._confirm([self._send(post, watch) for post in posts])
            self._wait(
                watch,
                0.25,
                lambda: progress.update(task, completed=len(watch.found)),
                self.config.stall_timeout,
            )
        seconds = max(watch.found.values()) - start if watch.found else math.nan
        return StreamRun(**self._accounted(watch), seconds=seconds, posts_per_s=len(watch.found) / seconds)

    def latency_run(self, rate: float, label: str) -> LatencyRun:
        """Posts sent at a steady ``rate`` for ``duration`` s, each one's send → searchable time."""
        posts = self.posts(max(1, round(rate * self.config.duration)))
        watch = Searchable(self.es, self.settings.index_alias)
        interval = self.config.poll_interval
        futures: list[FutureRecordMetadata] = []
        with progress_bar(self.console) as progress:
            task = progress.add_task(f"{label}: {rate:.1f} posts/s, searchable", total=len(posts))
            start = next_poll = time.monotonic()
            while len(futures) < len(posts):
                now = time.monotonic()
                while len(futures) < len(posts) and start + len(futures) / rate <= now:
                    futures.append(self._send(posts[len(futures)], watch))
                if now >= next_poll:
                    watch.poll()
                    progress.update(task, completed=len(watch.found))
                    next_poll = time.monotonic() + interval
                due = start + len(futures) / rate
                time.sleep(max(0.0, min(due, next_poll) - time.monotonic()))
            sent = sorted(watch.sent.values())
            self._confirm(futures)
            self._wait(
                watch,
                interval,
                lambda: progress.update(task, completed=len(watch.found)),
                self.config.stall_timeout,
            )
        span = sent[-1] - sent[0]
        p50, p95, p99, worst = _percentiles(watch.latencies())
        return LatencyRun(
            **self._accounted(watch),
            rate=rate,
            achieved_rate=(len(sent) - 1) / span if span > 0 else rate,
            p50=p50,
            p95=p95,
            p99=p99,
            max=worst,
            enriched_p50=median(list(watch.enriched_after.values())),
        )

    def worker_settings(self) -> dict[str, str]:
        s = self.settings
        shown = {
            "batch_size": str(s.batch_size),
            "batch_timeout": f"{s.batch_timeout:g} s",
            "model_backend": s.model_backend,
            "model_threads": str(s.model_threads),
            "topic_partitions": str(s.topic_partitions),
        }
        try:
            index = self.es.indices.get_settings(index=s.index_alias)
            refresh = {v["settings"]["index"].get("refresh_interval", "1s (default)") for v in index.values()}
            shown["refresh_interval"] = ", ".join(sorted(refresh))
        except Exception:  # a cluster that does not say: the table goes without it
            pass
        return shown

    def run(self) -> PipelineBenchReport:
        config = self.config
        self.warm_up()
        classify: list[ClassifyRun] = []
        stream: list[StreamRun] = []
        with tempfile.TemporaryDirectory(prefix="pantau-bench-classify-") as tmp:
            for k in range(1, config.repeat + 1):
                posts = self.posts(config.posts)
                label = f"run {k}/{config.repeat}"
                classify.append(self.classify_run(posts, Path(tmp), label))
                stream.append(self.stream_run(posts, label))
        capacity = median([s.posts_per_s for s in stream]) or 0.0
        if config.rates:
            targets = [("given", rate) for rate in config.rates]
        else:
            targets = [(f"{fraction:.0%}", fraction * capacity) for fraction in config.fractions]
        latency: list[LatencyPoint] = []
        for load, rate in targets:
            if rate <= 0:
                continue
            runs = [
                self.latency_run(rate, f"latency {load} run {k}/{config.repeat}")
                for k in range(1, config.repeat + 1)
            ]
            latency.append(latency_point(load, rate, runs))
        ratios = [s.posts_per_s / c.posts_per_s for s, c in zip(stream, classify, strict=True)]
        return PipelineBenchReport(
            posts=config.posts,
            repeat=config.repeat,
            worker=self.worker_settings(),
            classify=classify,
            stream=stream,
            classify_posts_per_s=median([c.posts_per_s for c in classify]) or math.nan,
            stream_posts_per_s=capacity,
            ratios=ratios,
            ratio=median(ratios) or math.nan,
            latency=latency,
        )


def run_pipeline_bench(
    settings: Settings, endpoints: Endpoints, config: PipelineBenchConfig, console: Console
) -> PipelineBenchReport:
    """Measure against the pipeline at ``endpoints`` (its worker must be running)."""
    bench = PipelineBench(settings, endpoints, config, console)
    try:
        return bench.run()
    finally:
        bench.close()


@contextlib.contextmanager
def private_stack(settings: Settings, console: Console) -> Iterator[tuple[Settings, Endpoints]]:
    """Broker, Elasticsearch and one worker in a temporary run directory, stopped and removed at the end,
    so the bench neither needs nor disturbs a user's `pantau up`."""
    from pipeline.provision import prepare_cluster

    with tempfile.TemporaryDirectory(prefix="pantau-bench-") as tmp:
        run_dir = Path(tmp)
        local = settings.model_copy(update={"run_dir": run_dir, "kafka_bootstrap": None, "es_url": None})
        stack = EmbeddedStack(local, run_dir)
        saved = os.environ.get("PANTAU_RUN_DIR")
        os.environ["PANTAU_RUN_DIR"] = str(run_dir)  # the worker inherits it: its Faust data dir
        try:
            with console.status("starting a private embedded stack and a worker (model load, group join)"):
                state = stack.start_servers()
                prepare_cluster(local, state.endpoints)
                worker = stack.start_worker()
                wait_for_worker_log(Path(worker.log), pid=worker.pid, timeout=WORKER_START_TIMEOUT)
            yield local, state.endpoints
        finally:
            stack.stop()
            if saved is None:
                os.environ.pop("PANTAU_RUN_DIR", None)
            else:
                os.environ["PANTAU_RUN_DIR"] = saved


# -- output -----------------------------------------------------------------------------------------
def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render_report(report: PipelineBenchReport, console: Console) -> None:
    worker = ", ".join(f"{name} {value}" for name, value in report.worker.items())
    console.print(
        f"[bold]pantau bench pipeline[/bold]: {report.posts} posts per run, median of {report.repeat} "
        f"run(s)\nworker: {worker}"
    )
    throughput = Table(title="throughput (posts/s)")
    for column in ("path", "median", "runs"):
        throughput.add_column(column, justify="left" if column == "path" else "right")
    throughput.add_row(
        "pantau classify --input (whole process, model load included)",
        f"{report.classify_posts_per_s:.1f}",
        ", ".join(f"{c.posts_per_s:.1f}" for c in report.classify),
    )
    throughput.add_row(
        "stream: produce all → all searchable",
        f"{report.stream_posts_per_s:.1f}",
        ", ".join(f"{s.posts_per_s:.1f}" for s in report.stream),
    )
    throughput.add_row(
        "ratio stream / classify",
        f"{report.ratio:.2f}",
        ", ".join(f"{ratio:.2f}" for ratio in report.ratios),
    )
    console.print(throughput)
    unaccounted = sum(s.lost + s.dead_lettered for s in report.stream)
    if unaccounted:
        lost, dead = sum(s.lost for s in report.stream), sum(s.dead_lettered for s in report.stream)
        console.print(f"[yellow]stream runs: {lost} posts lost, {dead} dead-lettered[/yellow]")
    latency = Table(title="produce → searchable latency (s), medians over runs")
    for column in (
        "load",
        "posts/s (sent)",
        "posts",
        "p50",
        "p95",
        "p99",
        "max",
        "→ enriched p50",
        "lost",
        "dead-lettered",
    ):
        latency.add_column(column, justify="right")
    for point in report.latency:
        achieved = median([r.achieved_rate for r in point.runs]) or 0.0
        latency.add_row(
            point.load,
            f"{point.rate:.1f} ({achieved:.1f})",
            str(sum(r.sent for r in point.runs)),
            _s(point.p50),
            _s(point.p95),
            _s(point.p99),
            _s(point.max),
            _s(point.enriched_p50),
            str(point.lost),
            str(point.dead_lettered),
        )
    console.print(latency)
