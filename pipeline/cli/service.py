"""Running the pipeline: the demo, the embedded stack as a service, and the worker itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from pipeline.embedded.process import ServerError
from pipeline.embedded.stack import EmbeddedStack, StackState, resolve_endpoints, wait_for_worker_log
from pipeline.embedded.supervisor import WorkerExit
from pipeline.health import read_health
from pipeline.settings import Settings, get_settings

console = Console(width=None if Console().is_terminal else 140)
WORKER_START_TIMEOUT = 300.0
"""Seconds `pantau up` waits for the worker: model load plus group join took up to ~2 minutes on two busy
cores."""


def register(app: typer.Typer) -> None:
    app.command(
        help="Start the embedded servers, stream the bundled sample through the pipeline, summarise."
    )(demo)
    app.command(
        help="Start the embedded Kafka, Elasticsearch and one supervised worker (restarted if it exits) "
        "in the background; says what was already running."
    )(up)
    app.command(
        help="Show the endpoints, worker (restarts, last exit, log), topics and index of the running "
        "pipeline; exit 1 if one is down."
    )(status)
    app.command(
        help="Stop the embedded worker's supervisor, the worker and the servers (by PID); "
        "Elasticsearch data is kept."
    )(down)
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
    found = stack.read_state()
    if stack.is_running():
        console.print(f"Kafka and Elasticsearch already running (run dir {stack.run_dir})")
    else:
        if found is not None:
            console.print(f"found a stack not fully up ({_servers(found)}): stopping what is left of it")
        console.print(
            "starting the embedded broker (Tansu, in memory: it starts empty every time) and Elasticsearch"
        )
    try:
        state = stack.start_servers()
        prepare_cluster(settings, state.endpoints, console)
        console.print(_worker_found(stack, state))
        supervision = stack.read_supervision()
        wait = 30.0
        if supervision and supervision.restart_at:  # a supervisor backing off starts the worker later
            wait += max(0.0, (supervision.restart_at - datetime.now(UTC)).total_seconds())
        worker = stack.start_worker(timeout=wait)
        with console.status("waiting for the worker (model load, group join)"):
            wait_for_worker_log(Path(worker.log), pid=worker.pid, timeout=WORKER_START_TIMEOUT)
    except ServerError as exc:
        console.print(
            f"[red]error:[/red] {exc}\n(what did start keeps running: `pantau down` stops it; the supervisor "
            "restarts a worker that exits, and `pantau status` says why it did)"
        )
        raise typer.Exit(1) from None
    endpoints = state.endpoints
    console.print(f"kafka          {endpoints.kafka}\nelasticsearch  {endpoints.elasticsearch}")
    console.print(f"worker pid     {worker.pid} (log {worker.log}; supervised, restarted if it exits)")
    _start_connectors(settings, endpoints.kafka, endpoints.elasticsearch)
    console.print(f"stop with: pantau down    (run dir {stack.run_dir})")


def _servers(state: StackState) -> str:
    return ", ".join(
        f"{name} {'running' if server and server.alive() else 'stopped'}"
        for name, server in (("Kafka", state.kafka), ("Elasticsearch", state.elasticsearch))
    )


def _worker_found(stack: EmbeddedStack, state: StackState) -> str:
    """What `pantau up` found of the worker, and so what it does about it."""
    supervised = bool(state.supervisor and state.supervisor.alive())
    supervision = stack.read_supervision()
    worker = stack.worker()
    if supervised and worker:
        restarts = supervision.restarts if supervision else 0
        return f"worker already running (pid {worker.pid}, supervised, {restarts} restarts)"
    if supervised and supervision and supervision.last_exit:
        return f"worker {supervision.last_exit.describe()}; its supervisor is restarting it"
    if worker:
        return f"worker {worker.pid} runs without its supervisor: stopping it, starting a supervised one"
    return "starting the worker, supervised: restarted with back-off whenever it exits"


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
    if not endpoints.embedded and not (state and state.supervisor):
        report["worker"] = "unknown"  # workers of an external cluster run elsewhere
    else:
        report.update(_worker_report(stack, state))
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
    if report["worker"] not in ("running", "unknown") or "topics_error" in report or "index_error" in report:
        raise typer.Exit(1)  # scripts and health checks read the exit status


def _worker_report(stack: EmbeddedStack, state: StackState | None) -> dict[str, object]:
    """The worker's state as its supervisor recorded it; when it is not running, why, and where its log is."""
    supervision = stack.read_supervision()
    supervised = bool(state and state.supervisor and state.supervisor.alive())
    last_exit = supervision.last_exit if supervision else None
    worker = stack.worker()
    report: dict[str, object] = {"worker": "running" if worker else "restarting" if supervised else "stopped"}
    if worker:
        report["worker_pid"] = worker.pid
        if not supervised:
            report["worker_why"] = "its supervisor is gone: it will not be restarted (`pantau up` fixes that)"
    elif supervised:
        at = supervision.restart_at if supervision else None
        report["worker_why"] = "its supervisor restarts it" + (f" at {_local(at)}" if at else "")
    elif supervision and supervision.stopped_at:
        stopped = _local(supervision.stopped_at)
        report["worker_why"] = f"stopped on request at {stopped}; `pantau up` starts it"
    elif state and state.supervisor:
        log = state.supervisor.log
        report["worker_why"] = f"its supervisor is gone (log {log}); `pantau up` starts both"
    else:
        report["worker_why"] = "not started; `pantau up` starts it"
    report["worker_log"] = str(stack.worker_log)
    report["worker_restarts"] = supervision.restarts if supervision else 0
    problems = {
        name: f"{problem.reason} (since {_local(problem.since)})"
        for health in read_health(stack.run_dir)
        if worker and health.pid == worker.pid
        for name, problem in health.problems.items()
    }
    if problems:  # alive but stuck: it waits rather than lose a message, and says why
        report["worker"] = "blocked"
        report["worker_why"] = "; ".join(f"{name}: {reason}" for name, reason in problems.items())
    if last_exit:
        report["worker_last_exit"] = last_exit.model_dump(mode="json")
    return report


def _local(at: datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _print_status(report: dict[str, object], as_json: bool) -> None:
    keys = [key for key in report if not key.startswith("worker_")]
    at = keys.index("worker") + 1
    keys[at:at] = [key for key in report if key.startswith("worker_")]  # the worker's lines together
    report = {key: report[key] for key in keys}
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if key == "worker_last_exit" and isinstance(value, dict):
            value = f"{WorkerExit.model_validate(value).describe()} (log {value['log']})"
        console.print(f"{key:<16} {json.dumps(value) if isinstance(value, dict) else value}", soft_wrap=True)


def down() -> None:
    stack = EmbeddedStack(get_settings())
    state = stack.read_state()
    if state is None:
        console.print("nothing running")
        return
    parts = [
        ("the worker's supervisor", state.supervisor),
        ("the worker", stack.worker()),
        ("Kafka", state.kafka),
        ("Elasticsearch", state.elasticsearch),
    ]
    running = [name for name, server in parts if server and server.alive()]
    running += ["the connectors"] if _stop_connectors(stack.settings) else []
    stack.stop()
    console.print(
        f"stopped {', '.join(running) or 'nothing (all had exited)'} "
        f"(Elasticsearch data kept in {stack.run_dir / 'es-data'})"
    )


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


def _start_connectors(settings: Settings, kafka: str, elasticsearch: str) -> None:
    """The connectors of ``PANTAU_SOURCES_FILE`` (``pipeline/sources/services.py``), after the worker."""
    from pipeline.sources.services import SourcesFileError, start_in_background

    try:
        console.print(start_in_background(settings, kafka, elasticsearch), soft_wrap=True)
    except SourcesFileError as exc:
        console.print(f"[red]error:[/red] PANTAU_SOURCES_FILE: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def _stop_connectors(settings: Settings) -> bool:
    from pipeline.sources.services import stop_background

    return stop_background(settings)
