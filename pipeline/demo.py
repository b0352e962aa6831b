"""The main job on the embedded default: servers up, sample streamed, processed, summarised."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch, NotFoundError
from rich.console import Console

from pipeline.alerts.report import show_demo_alerts
from pipeline.brief.data import Period, newest_post_time
from pipeline.brief.write import write_brief
from pipeline.embedded.process import ServerError, spawn, stop
from pipeline.embedded.stack import EmbeddedStack, Endpoints, wait_for_worker_log
from pipeline.kafka.producer import produce_file
from pipeline.provision import prepare_cluster
from pipeline.report import progress_bar, query_topics, render_summary, render_topics, summarise
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import sync_client
from pipeline.sources.files import count_records
from pipeline.tracking import wait_processed

DEMO_WINDOW_HOURS = 192
"""The bundled sample spans eight days; the demo's discovery window covers all of it."""
SAMPLE_POSTS = Path(__file__).resolve().parent / "samples" / "posts.jsonl"


def show_topics(
    settings: Settings, es: Elasticsearch, console: Console, since: timedelta, wait: float = 60.0
) -> None:
    """The emerging topics of the stream's newest ``since``, once discovery has published them."""
    deadline = time.monotonic() + wait
    rows: list[dict[str, object]] = []
    with console.status("waiting for topic discovery"):
        while time.monotonic() < deadline:
            try:
                rows = query_topics(es, settings.topics_index, since, None, None, 8)
            except NotFoundError:
                rows = []
            if rows:
                break
            time.sleep(1)
    if rows:
        hours = since.total_seconds() / 3600
        render_topics(console, rows, title=f"Top emerging topics (last {hours:g} h of the stream)")
    else:
        console.print("no emerging topic yet: too few similar public-service posts in the window")


def write_sample_brief(settings: Settings, es: Elasticsearch, keys: list[str]) -> Path | None:
    """`pantau report` for the sample's own eight days (they lie in the past), into the run directory."""
    end = newest_post_time(es, settings.index_alias, keys)
    if end is None:
        return None
    period = Period(
        start=end + timedelta(minutes=1) - timedelta(hours=DEMO_WINDOW_HOURS), end=end + timedelta(minutes=1)
    )
    return write_brief(es, settings, period, settings.run_dir / "brief.html")


def run_demo(settings: Settings, console: Console, keep: bool, file: Path | None, timeout: float) -> bool:
    path = file or SAMPLE_POSTS
    external = bool(settings.kafka_bootstrap and settings.es_url)
    stack = EmbeddedStack(settings)
    started_here = False
    worker_pid: int | None = None
    try:
        if external:
            assert settings.kafka_bootstrap and settings.es_url
            endpoints = Endpoints(
                kafka=settings.kafka_bootstrap, elasticsearch=settings.es_url, embedded=False
            )
            console.print(
                f"using Kafka {endpoints.kafka} and Elasticsearch {endpoints.elasticsearch} (PANTAU_*)"
            )
        else:
            if not stack.is_running():
                console.print(
                    "starting the embedded broker (Tansu, in memory: empty on every start) "
                    "and Elasticsearch (noida-db) …"
                )
                started_here = True
            state = stack.start_servers()
            endpoints = state.endpoints
            console.print(
                f"kafka {endpoints.kafka}   elasticsearch {endpoints.elasticsearch}   logs {stack.logs}"
            )
        prepare_cluster(settings, endpoints, console)

        t0 = time.monotonic()
        started = datetime.now(UTC)
        if external:
            log = settings.run_dir / "logs" / "demo-worker.log"
            worker_pid = spawn(
                [sys.executable, "-m", "pipeline.cli", "worker"],
                log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        else:
            # a demo wants its topics now, not after a production-sized update interval
            os.environ.setdefault("PANTAU_TOPICS_UPDATE_INTERVAL", "5")
            os.environ.setdefault("PANTAU_TOPICS_WINDOW_HOURS", str(DEMO_WINDOW_HOURS))
            worker = stack.start_worker()
            log, worker_pid = Path(worker.log), worker.pid
        console.print(f"worker started (pid {worker_pid}, log {log}); loading the model …")

        total = count_records(path)
        with progress_bar(console) as progress:
            task = progress.add_task(f"producing {path.name}", total=total)
            report = produce_file(
                settings, endpoints.kafka, path, on_record=lambda: progress.advance(task), keep_keys=True
            )
        for bad in report.invalid:
            console.print(f"[yellow]line {bad.line} not sent:[/yellow] {bad.reason}")

        wait_for_worker_log(log, pid=worker_pid)
        es = sync_client(settings, endpoints.elasticsearch)
        keys = sorted(set(report.keys))
        with progress_bar(console) as progress:
            task = progress.add_task("processing (indexed + dead-lettered)", total=len(keys))
            tally = wait_processed(
                settings,
                endpoints.kafka,
                es,
                keys,
                timeout=timeout,
                on_progress=lambda t: progress.update(task, completed=t.indexed + t.dead_lettered),
                since=started,
            )
        elapsed = time.monotonic() - t0

        console.rule("Pantau Banten demo")
        console.print(
            f"posts in file      {total}\nsent to Kafka      {report.sent} ({len(keys)} distinct posts)\n"
            f"rejected at input  {len(report.invalid)}\nindexed            {tally.indexed}\n"
            f"dead-lettered      {tally.dead_lettered}\ntime               {elapsed:.1f}s "
            f"(worker start and model load included)"
        )
        for letter in tally.dead_letters[:10]:
            console.print(f"  [yellow]dead letter[/yellow] [{letter.stage}] {letter.reason}")
        render_summary(console, summarise(es, settings.index_alias, keys))
        window_hours = float(os.environ.get("PANTAU_TOPICS_WINDOW_HOURS", settings.topics_window_hours))
        show_topics(settings, es, console, since=timedelta(hours=window_hours))
        show_demo_alerts(es, settings.alerts_index, console, started)
        brief = write_sample_brief(settings, es, keys)
        if brief is not None:
            console.print(f"weekly brief of the sample (open it in a browser): {brief}")
        es.close()
        console.print(
            "query the index:\n"
            f"  curl -s '{endpoints.elasticsearch}/{settings.index_alias}/_search?pretty&size=3"
            "&q=agencies:samsat%20AND%20sentiment.label:negative'\n"
            f'  pantau classify "jalan di Cikupa rusak parah, @dpupr_banten kapan dibenerin?"'
        )
        if not tally.done:
            left = tally.expected - tally.indexed - tally.dead_lettered
            console.print(f"[red]timed out after {timeout:.0f}s with {left} posts unprocessed[/red]")
        return tally.done
    except ServerError:
        raise
    finally:
        if external and worker_pid:
            stop(worker_pid, timeout=30)
        elif started_here and not keep:
            stack.stop()
            console.print("embedded servers stopped (use --keep to leave them running)")
        elif keep or not started_here:
            console.print("stack left running: `pantau status`, `pantau down`")
