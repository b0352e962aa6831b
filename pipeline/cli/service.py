"""Running the pipeline: the demo, the embedded stack as a service, and the worker itself."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from pipeline.embedded.process import ServerError
from pipeline.embedded.stack import EmbeddedStack, resolve_endpoints, wait_for_worker_log
from pipeline.settings import get_settings

console = Console(width=None if Console().is_terminal else 140)
WORKER_START_TIMEOUT = 300.0
"""Seconds `pantau up` waits for the worker: model load plus group join took up to ~2 minutes on two busy
cores."""


def register(app: typer.Typer) -> None:
    app.command(
        help="Start the embedded servers, stream the bundled sample through the pipeline, summarise."
    )(demo)
    app.command(help="Start the embedded Kafka, Elasticsearch and one worker in the background.")(up)
    app.command(
        help="Show the endpoints, worker, topics and index of the running pipeline; exit 1 if one is down."
    )(status)
    app.command(help="Stop the embedded worker and servers (by PID); Elasticsearch data is kept.")(down)
    app.command(help="Run the Faust worker in the foreground (enrich + index agents).")(worker)


def demo(
    keep: bool = typer.Option(False, "--keep", help="leave the servers and worker running afterwards"),
    file: Path | None = typer.Option(None, "--file", help="posts to stream instead of the bundled sample"),
    timeout: float = typer.Option(900.0, help="seconds to wait for the worker to process everything"),
) -> None:
    from pipeline.demo import run_demo

    try:
        ok = run_demo(get_settings(), console, keep=keep, file=file, timeout=timeout)
    except ServerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(0 if ok else 1)


def up() -> None:
    from pipeline.provision import prepare_cluster

    settings = get_settings()
    stack = EmbeddedStack(settings)
    if stack.is_running():
        console.print(f"already running (run dir {stack.run_dir})")
    else:
        console.print(
            "starting the embedded broker (Tansu, in memory: it starts empty every time) and Elasticsearch"
        )
    try:
        state = stack.start_servers()
        prepare_cluster(settings, state.endpoints, console)
        state = stack.start_worker()
        assert state.worker is not None
        with console.status("waiting for the worker (model load, group join)"):
            wait_for_worker_log(Path(state.worker.log), pid=state.worker.pid, timeout=WORKER_START_TIMEOUT)
    except ServerError as exc:
        console.print(f"[red]error:[/red] {exc}\n(what did start keeps running: `pantau down` stops it)")
        raise typer.Exit(1) from None
    endpoints = state.endpoints
    console.print(f"kafka          {endpoints.kafka}\nelasticsearch  {endpoints.elasticsearch}")
    console.print(
        f"worker pid     {state.worker.pid if state.worker else '-'} (log {stack.logs / 'worker.log'})"
    )
    console.print(f"stop with: pantau down    (run dir {stack.run_dir})")


def status(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    from elasticsearch import ApiError, NotFoundError, TransportError

    from pipeline.kafka.topics import describe_topics
    from pipeline.sinks.elasticsearch import sync_client

    settings = get_settings()
    stack = EmbeddedStack(settings)
    state = stack.read_state()
    report: dict[str, object] = {
        "kafka": None,
        "elasticsearch": None,
        "worker": "stopped",
        "topics": {},
        "index": settings.index_alias,
        "documents": None,
        "embedded": not (settings.kafka_bootstrap and settings.es_url),
    }
    try:
        endpoints = resolve_endpoints(settings)
    except ServerError as exc:
        report["error"] = str(exc)
        _print_status(report, as_json)
        raise typer.Exit(1) from None
    report["kafka"] = endpoints.kafka
    report["elasticsearch"] = endpoints.elasticsearch
    if not endpoints.embedded and not (state and state.worker):
        report["worker"] = "unknown"  # workers of an external cluster run elsewhere
    if state and state.worker and state.worker.alive():
        report["worker"] = "running"
        report["worker_pid"] = state.worker.pid
    try:
        report["topics"] = {
            t.name: {"partitions": t.partitions} for t in describe_topics(settings, endpoints.kafka)
        }
    except Exception as exc:
        report["topics_error"] = str(exc)
    es = sync_client(settings, endpoints.elasticsearch)
    try:
        report["documents"] = int(es.count(index=settings.index_alias)["count"])
    except NotFoundError:  # nothing indexed yet
        report["documents"] = 0
    except (ApiError, TransportError) as exc:
        report["index_error"] = str(exc).splitlines()[0]
    finally:
        es.close()
    _print_status(report, as_json)
    if report["worker"] == "stopped" or "topics_error" in report or "index_error" in report:
        raise typer.Exit(1)  # scripts and health checks read the exit status


def _print_status(report: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        console.print(f"{key:<14} {json.dumps(value) if isinstance(value, dict) else value}")


def down() -> None:
    stack = EmbeddedStack(get_settings())
    if stack.read_state() is None:
        console.print("nothing running")
        return
    stack.stop()
    console.print(f"stopped (Elasticsearch data kept in {stack.run_dir / 'es-data'})")


def worker() -> None:
    from elasticsearch import TransportError
    from faust.worker import Worker
    from kafka.errors import KafkaError

    from pipeline.app import create_app
    from pipeline.enrich.enricher import Enricher
    from pipeline.provision import prepare_cluster

    settings = get_settings()
    try:
        endpoints = resolve_endpoints(settings)
        prepare_cluster(settings, endpoints, console)
    except (ServerError, KafkaError, TransportError) as exc:  # e.g. a cluster that does not answer
        console.print(f"[red]error:[/red] {str(exc) or repr(exc)}")
        raise typer.Exit(1) from None
    try:  # before joining the group: a worker that cannot enrich must not look ready
        model = Enricher.from_settings(settings)
    except Exception as exc:
        console.print(f"[red]error:[/red] cannot load the model from {settings.model_dir}: {exc}")
        raise typer.Exit(1) from None
    console.print(f"model {model.model_version} loaded ({settings.model_backend})")
    app = create_app(settings, endpoints, model)
    Worker(app, loglevel=settings.worker_log_level, quiet=True).execute_from_commandline()
