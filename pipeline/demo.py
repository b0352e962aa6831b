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


def topics_fingerprint(es: Elasticsearch, index: str) -> tuple[tuple[str, str, int, str], ...] | None:
    """Every published topic's id, label, size and update time; None before discovery's first publish."""
    try:
        es.indices.refresh(index=index)
        hits = es.search(index=index, size=1000, source_includes=["id", "label", "size", "updated_at"])[
            "hits"
        ]["hits"]
    except NotFoundError:
        return None
    return tuple(
        sorted(
            (h["_source"]["id"], h["_source"]["label"], h["_source"]["size"], h["_source"]["updated_at"])
            for h in hits
        )
    )


def newest_discovery_input(es: Elasticsearch, alias: str, keys: list[str]) -> datetime | None:
    """The newest of these posts that topic discovery takes (public service, not an official account's),
    capped at now: the stream clock its final update is dated with."""
    query = {
        "bool": {
            "filter": [{"ids": {"values": keys}}, {"term": {"is_public_service": True}}],
            "must_not": [{"exists": {"field": "official_account"}}],
        }
    }
    hits = es.search(
        index=alias, size=1, query=query, sort=[{"@timestamp": "desc"}], source_includes=["@timestamp"]
    )
    found = hits["hits"]["hits"]
    if not found:
        return None
    return min(datetime.fromisoformat(found[0]["_source"]["@timestamp"]), datetime.now(UTC))


def wait_final_topics(
    es: Elasticsearch, index: str, clock: datetime | None, quiet: float, wait: float
) -> bool:
    """Until discovery has published an update that saw the stream up to ``clock`` and then published
    nothing new for ``quiet`` seconds: the final update, not the first one after indexing (a table printed
    3 s too early showed one topic where the worker had nine, under a label the index no longer held).
    False when ``wait`` ran out first."""
    deadline = time.monotonic() + wait
    last: tuple[tuple[str, str, int, str], ...] | None = None
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        now = topics_fingerprint(es, index)
        if now != last:
            last, stable_since = now, time.monotonic()
        caught_up = bool(now) and (
            clock is None or max(datetime.fromisoformat(t[3]) for t in now or ()) >= clock
        )
        if caught_up and time.monotonic() - stable_since >= quiet:
            return True
        time.sleep(0.5)
    return False


def show_topics(
    settings: Settings,
    es: Elasticsearch,
    console: Console,
    since: timedelta,
    clock: datetime | None = None,
    quiet: float = 15.0,
    wait: float = 120.0,
) -> None:
    """The emerging topics of the stream's newest ``since``, once discovery has published its final update
    for the stream up to ``clock`` (the newest post); the same rows `pantau topics` prints."""
    limit = 8
    with console.status("waiting for the final topic update"):
        settled = wait_final_topics(es, settings.topics_index, clock, quiet, wait)
    try:
        rows = query_topics(es, settings.topics_index, since, None, None, limit)
    except NotFoundError:
        rows = []
    hours = since.total_seconds() / 3600
    if rows:
        render_topics(console, rows, title=f"Top emerging topics (last {hours:g} h of the stream)")
        console.print(f"the same list: pantau topics --since {hours:g}h --limit {limit}")
    else:
        console.print("no emerging topic yet: too few similar public-service posts in the window")
    if not settled:
        console.print(
            f"[yellow]topic discovery still updating after {wait:.0f}s: the list may change[/yellow]"
        )


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
        interval = float(os.environ.get("PANTAU_TOPICS_UPDATE_INTERVAL", settings.topics_update_interval))
        clock = newest_discovery_input(es, settings.index_alias, keys)
        show_topics(
            settings,
            es,
            console,
            since=timedelta(hours=window_hours),
            clock=clock,
            quiet=max(3 * interval, 10.0),
            wait=max(timeout, 120.0),
        )
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
