"""``pantau ingest``: connectors that collect posts from the platforms, and their state."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from pipeline.settings import Settings, get_settings
from pipeline.tables import print_table

if TYPE_CHECKING:
    from pipeline.sources.queries import Terms
    from pipeline.sources.runner import Runner

app = typer.Typer(
    help="Connectors: posts from X, YouTube, Instagram, Facebook, Mastodon and news feeds into the raw "
    "topic; a push endpoint; their state",
    no_args_is_help=True,
)
console = Console(stderr=True)
out = Console(width=None if Console().is_terminal else 160, emoji=False, markup=False)  # cursors hold ":"

ONCE_HELP = "one round until caught up, then exit (default: run until stopped)"


def _terms(settings: Settings) -> Terms:
    from pipeline.sources.queries import QueriesFileError, load_terms

    try:
        return load_terms(settings.queries_file)
    except QueriesFileError as exc:
        console.print(f"[red]error:[/red] PANTAU_QUERIES_FILE: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def _run(
    build: Callable[[Settings], object],
    once: bool,
    action: Callable[[Runner, Settings, threading.Event], None] | None = None,
) -> None:
    from kafka.errors import KafkaError

    from pipeline.cli.endpoints import running_endpoints
    from pipeline.kafka.producer import make_producer
    from pipeline.kafka.topics import ensure_topics
    from pipeline.sources.connector import AccessDenied, Connector, SourceError
    from pipeline.sources.runner import Runner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = get_settings()
    try:
        connector = build(settings)
    except SourceError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    assert isinstance(connector, Connector)
    endpoints = running_endpoints(settings, console)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        ensure_topics(settings, endpoints.kafka)
        producer = make_producer(settings, endpoints.kafka)
    except KafkaError as exc:
        console.print(f"[red]error:[/red] Kafka at {endpoints.kafka}: {exc!r}")
        raise typer.Exit(1) from None
    runner = Runner(settings, endpoints.kafka, connector, producer, stop)
    runner.log_queries()
    try:
        if action is not None:
            action(runner, settings, stop)
        elif once:
            report = runner.run_round()
            if runner.metrics.state == "polling":  # done, not failed or out of quota
                runner.metrics.state = "stopped"
                runner.save_metrics()
            console.print(
                f"{connector.name}: fetched {report.fetched}, sent {report.sent} to {settings.topic_raw}, "
                f"refused {report.rejected}"
                + (f", {report.deleted} gone sent for removal" if report.deleted else "")
                + ("; today's quota is used" if report.quota_spent else ""),
                soft_wrap=True,
            )
        else:
            runner.run_forever()
    except AccessDenied as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    except (SourceError, KafkaError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        runner.close()
        producer.close()


def _brief(cursor: dict[str, object]) -> dict[str, object]:
    """A cursor for the table: what a stream keeps (YouTube's recent videos, Mastodon's recent statuses)
    as a count; ``--json`` has it whole."""
    return {k: f"{len(v)} kept" if isinstance(v, list | dict) else v for k, v in cursor.items()}


@app.command(
    "x",
    help="X recent search for the gazetteer's queries and from: the agencies' accounts; --stream: the "
    "filtered stream; --compliance: remove the posts X reports deleted.",
)
def ingest_x(
    once: bool = typer.Option(False, "--once", help=ONCE_HELP),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="filtered stream (rules kept to the queries; a recent-search round before each connection)",
    ),
    compliance: bool = typer.Option(
        False, "--compliance", help="batch compliance: remove the indexed posts X reports deleted (daily)"
    ),
) -> None:
    from pipeline.sources.queries import x_queries
    from pipeline.sources.x import x_connector

    if once and stream:
        console.print("[red]error:[/red] --once and --stream exclude each other (a stream has no end)")
        raise typer.Exit(2)
    if compliance and stream:
        console.print("[red]error:[/red] --compliance and --stream are two processes: run them apart")
        raise typer.Exit(2)

    def checking(runner: Runner, settings: Settings, stop: threading.Event) -> None:
        from pipeline.cli.endpoints import running_endpoints
        from pipeline.sinks.elasticsearch import sync_client
        from pipeline.sources.xcompliance import ComplianceCheck

        assert settings.x_bearer_token is not None  # x_connector checked it
        es = sync_client(settings, running_endpoints(settings, console).elasticsearch)
        check = ComplianceCheck(settings.x_api_base, settings.x_bearer_token.get_secret_value(), stop)
        try:
            while not stop.is_set():
                runner.metrics.state = "checking compliance"
                runner.save_metrics()
                removed = check.run(es, settings.index_alias, runner.producer, settings.topic_raw)
                runner.metrics.deleted += removed
                runner.metrics.state = "stopped" if once else "idle"
                runner.save_metrics()
                console.print(f"x: compliance: {removed} posts X reports gone were sent for removal")
                if once:
                    return
                stop.wait(settings.x_compliance_interval)
        finally:
            check.close()
            es.close()

    def streaming(runner: Runner, settings: Settings, stop: threading.Event) -> None:
        from pipeline.sources.xstream import FilteredStream

        assert settings.x_bearer_token is not None  # x_connector checked it
        queries = [s.description for s in runner.connector.streams]
        filtered = FilteredStream(
            runner, settings.x_api_base, settings.x_bearer_token.get_secret_value(), queries, stop
        )
        try:
            filtered.run()
        finally:
            filtered.close()

    action = streaming if stream else checking if compliance else None
    _run(lambda s: x_connector(s, x_queries(_terms(s))), once, action)


@app.command("mastodon", help="Mastodon tag timelines of the Banten hashtags and place names.")
def ingest_mastodon(once: bool = typer.Option(False, "--once", help=ONCE_HELP)) -> None:
    from pipeline.sources.mastodon import mastodon_connector
    from pipeline.sources.queries import mastodon_tags

    _run(lambda s: mastodon_connector(s, mastodon_tags(_terms(s))), once)


@app.command("rss", help="News feeds listed in PANTAU_RSS_FEEDS_FILE (ETag / Last-Modified).")
def ingest_rss(once: bool = typer.Option(False, "--once", help=ONCE_HELP)) -> None:
    from pipeline.sources.rss import rss_connector

    _run(rss_connector, once)


@app.command("youtube", help="YouTube search.list for the queries, then commentThreads of each new video.")
def ingest_youtube(once: bool = typer.Option(False, "--once", help=ONCE_HELP)) -> None:
    from pipeline.sources.queries import youtube_queries
    from pipeline.sources.youtube import youtube_connector

    _run(lambda s: youtube_connector(s, youtube_queries(_terms(s))), once)


@app.command("facebook", help="Posts and comments of the Pages in PANTAU_FACEBOOK_PAGES.")
def ingest_facebook(once: bool = typer.Option(False, "--once", help=ONCE_HELP)) -> None:
    from pipeline.sources.facebook import facebook_connector

    _run(facebook_connector, once)


@app.command(
    "instagram", help="Hashtag recent_media (30 hashtags per 7 days) and comments on the account's media."
)
def ingest_instagram(once: bool = typer.Option(False, "--once", help=ONCE_HELP)) -> None:
    from pipeline.sources.instagram import instagram_connector
    from pipeline.sources.queries import instagram_hashtags

    def build(settings: Settings) -> object:
        searched, left_out = instagram_hashtags(_terms(settings))
        if left_out:
            logging.getLogger("pantau.ingest").warning(
                "instagram: %d hashtags left out (30 per 7 days): %s", len(left_out), ", ".join(left_out)
            )
        return instagram_connector(settings, searched)

    _run(build, once)


@app.command(
    "serve", help="POST /ingest: JSON or NDJSON posts from other collectors, bearer PANTAU_INGEST_TOKEN."
)
def ingest_serve() -> None:
    from kafka.errors import KafkaError

    from pipeline.cli.endpoints import running_endpoints
    from pipeline.kafka.producer import make_producer
    from pipeline.kafka.topics import ensure_topics
    from pipeline.sources.push import PATH, MetaWebhook, PushServer
    from pipeline.sources.webhooks import PATH as META_PATH

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = get_settings()
    if settings.ingest_token is None or not settings.ingest_token.get_secret_value().strip():
        console.print(
            "[red]error:[/red] PANTAU_INGEST_TOKEN is not set: the endpoint takes posts only with a token"
        )
        raise typer.Exit(2)
    meta = None
    if settings.meta_app_secret is not None and settings.meta_verify_token is not None:
        meta = MetaWebhook(
            settings.meta_app_secret.get_secret_value(), settings.meta_verify_token.get_secret_value()
        )
    elif settings.meta_app_secret is not None or settings.meta_verify_token is not None:
        console.print(
            "[red]error:[/red] Meta webhooks need both PANTAU_META_APP_SECRET and PANTAU_META_VERIFY_TOKEN"
        )
        raise typer.Exit(2)
    endpoints = running_endpoints(settings, console)
    try:
        ensure_topics(settings, endpoints.kafka)
        producer = make_producer(settings, endpoints.kafka)
    except KafkaError as exc:
        console.print(f"[red]error:[/red] Kafka at {endpoints.kafka}: {exc!r}")
        raise typer.Exit(1) from None
    try:
        server = PushServer(
            settings.ingest_host,
            settings.ingest_port,
            settings.ingest_token.get_secret_value(),
            producer,
            settings.topic_raw,
            meta,
        )
    except OSError as exc:
        producer.close()
        console.print(
            f"[red]error:[/red] cannot listen on {settings.ingest_host}:{settings.ingest_port}: {exc}"
        )
        raise typer.Exit(1) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    console.print(
        f"listening on http://{settings.ingest_host}:{server.port}{PATH} → {settings.topic_raw}",
        soft_wrap=True,
    )
    if meta is not None:
        console.print(f"Meta webhooks (deletions) on http://{settings.ingest_host}:{server.port}{META_PATH}")
    try:
        server.serve(stop)
    finally:
        producer.close()


@app.command(
    "all", help="Every connector in PANTAU_SOURCES_FILE, each restarted with back-off when it exits."
)
def ingest_all() -> None:
    from pipeline.sources.services import SourcesFileError, read_sources, supervise

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    settings = get_settings()
    if settings.sources_file is None:
        console.print("[red]error:[/red] PANTAU_SOURCES_FILE is not set (YAML: connectors: [x, rss, serve])")
        raise typer.Exit(2)
    try:
        names = read_sources(settings.sources_file)
    except SourcesFileError as exc:
        console.print(f"[red]error:[/red] PANTAU_SOURCES_FILE: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    supervise(names, stop)


@app.command(
    "status", help="Each connector: state, last poll, posts fetched and sent, rate limit, quota, cursors."
)
def ingest_status(
    as_json: bool = typer.Option(False, "--json", help="one JSON object per connector"),
) -> None:
    from pipeline.embedded.process import is_alive
    from pipeline.sources.metrics import all_metrics

    settings = get_settings()
    found = all_metrics(settings)
    for metrics in found:  # a connector killed without a word still says "polling": say it is gone
        if metrics.state not in ("stopped",) and metrics.pid and not is_alive(metrics.pid):
            metrics.state = "not running"
    if as_json:
        for metrics in found:
            print(json.dumps(metrics.model_dump(mode="json")))
        return
    if not found:
        console.print(f"no connector has run with this run directory ({settings.run_dir})")
        return
    headers = (
        "connector",
        "state",
        "last poll (UTC)",
        "fetched",
        "sent",
        "refused",
        "removed",
        "rate limit",
        "quota today",
        "cursors",
    )
    rows = []
    for m in found:
        rate = "—"
        if m.rate_limit.waiting_until:
            rate = f"waiting until {m.rate_limit.waiting_until:%H:%M:%S}"
        elif m.rate_limit.remaining is not None:
            rate = f"{m.rate_limit.remaining} left" + (
                f", reset {m.rate_limit.reset_at:%H:%M:%S}" if m.rate_limit.reset_at else ""
            )
        if m.rate_limit.limited:
            rate += f"; {m.rate_limit.limited}× 429"
        quota = f"{m.quota.used}/{m.quota.budget}" if m.quota else "—"
        poll = m.last_poll.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if m.last_poll else "never"
        state = m.state + (f" ({m.last_error})" if m.last_error else "")
        if m.state == "idle" and m.next_round:
            state += f", next round {m.next_round.astimezone(UTC):%H:%M:%S}"
        cursors = "; ".join(f"{k}: {json.dumps(_brief(v))}" for k, v in sorted(m.cursors.items())) or "—"
        counts = (m.fetched, m.sent, m.rejected, m.deleted)
        rows.append((m.connector, state, poll, *counts, rate, quota, cursors))
    print_table(out, headers, rows, title="connectors")
