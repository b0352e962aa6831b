"""Running the pipeline: the demo, the embedded stack as a service, and the worker itself."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from pipeline.cli.output import make_console, print_table
from pipeline.embedded.process import ServerError
from pipeline.embedded.stack import EmbeddedStack, StackState, resolve_endpoints, wait_for_worker_log
from pipeline.embedded.supervisor import WorkerExit
from pipeline.health import read_health
from pipeline.settings import Settings, get_settings
from pipeline.wording import plural

console = make_console()
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
        help="Show the consumer group as Kafka reports it (members, assignments, lag per partition), the "
        "embedded worker (restarts, last exit, log), topics, index and drift from the settings; exit 1 when "
        "a part is down, no worker is in the group or its lag keeps growing."
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


def status(
    as_json: bool = typer.Option(
        False, "--json", help="machine-readable output (one JSON object per refresh)"
    ),
    watch: bool = typer.Option(
        False, "--watch", help="refresh every PANTAU_STATUS_WATCH_INTERVAL seconds until interrupted"
    ),
    count: int = typer.Option(0, "--count", min=0, help="with --watch: stop after this many refreshes"),
) -> None:
    settings = get_settings()
    if not watch:
        raise typer.Exit(_status_once(settings, as_json))
    done = 0
    code = 0
    try:
        while True:
            if console.is_terminal and not as_json:
                console.clear()
            code = _status_once(settings, as_json)
            done += 1
            if count and done >= count:
                break
            time.sleep(settings.status_watch_interval)
    except KeyboardInterrupt:
        pass
    raise typer.Exit(code)


def _status_once(settings: Settings, as_json: bool) -> int:
    """One look at the pipeline; the exit status: 1 when a part is down, no worker is in the consumer
    group, or its lag only grew over PANTAU_STATUS_LAG_INTERVAL."""
    from elasticsearch import ApiError, NotFoundError, TransportError

    from pipeline.drift import index_drift, topic_drift
    from pipeline.kafka.groups import describe_group
    from pipeline.kafka.topics import describe_topics
    from pipeline.sinks.elasticsearch import sync_client

    stack = EmbeddedStack(settings)
    state = stack.read_state()
    report: dict[str, object] = {
        "kafka": None,
        "elasticsearch": None,
        "worker": "stopped",
        "group": None,
        "topics": {},
        "index": settings.index_alias,
        "documents": None,
        "drift": [],
        "embedded": not (settings.kafka_bootstrap and settings.es_url),
    }
    problems: list[str] = []
    try:
        endpoints = resolve_endpoints(settings)
    except ServerError as exc:
        report["error"] = str(exc)
        _print_status(report, as_json)
        return 1
    report["kafka"] = endpoints.kafka
    report["elasticsearch"] = endpoints.elasticsearch
    supervised = endpoints.embedded or bool(state and state.supervisor)
    if supervised:
        report.update(_worker_report(stack, state))
    drift = []
    try:
        group = describe_group(settings, endpoints.kafka)
        trend = _lag_trend(settings, group.lag)
        report["group"] = group.model_dump(mode="json") | {
            "lag": group.lag,
            "lag_trend": trend,
            "lag_interval": settings.status_lag_interval,
        }
        if not group.members:
            problems.append(f"no worker is in the consumer group {settings.app_id}")
        if trend == "growing":
            problems.append(f"the consumer lag grew for {settings.status_lag_interval:g} s")
        if not supervised:  # workers of an external cluster: what the group says
            report["worker"] = "running" if group.members else "stopped"
            report["workers"] = len(group.members)
        lags = group.lag_by_topic()
        topics = describe_topics(settings, endpoints.kafka)
        report["topics"] = {
            t.name: {"partitions": t.partitions, "replication": t.replication, "lag": lags.get(t.name)}
            for t in topics
        }
        drift += topic_drift(settings, topics, endpoints.kafka)
    except Exception as exc:
        report["topics_error"] = str(exc) or repr(exc)
    es = sync_client(settings, endpoints.elasticsearch)
    try:
        report["documents"] = int(es.count(index=settings.index_alias)["count"])
        drift += index_drift(settings, es)
    except NotFoundError:  # nothing indexed yet
        report["documents"] = 0
    except (ApiError, TransportError) as exc:
        report["index_error"] = str(exc).splitlines()[0]
    finally:
        es.close()
    report["drift"] = [d.model_dump() | {"message": d.describe()} for d in drift]
    if report["worker"] != "running":
        problems.insert(0, f"worker {report['worker']}")
    problems += [f"{key}: {report[key]}" for key in ("topics_error", "index_error") if key in report]
    report["problems"] = problems
    _print_status(report, as_json)
    return 1 if problems else 0  # scripts and health checks read the exit status


def _lag_trend(settings: Settings, lag: int) -> str:
    from pipeline.kafka.lag import LagHistory, LagSample, lag_trend

    now = datetime.now(UTC)
    samples = LagHistory(settings.run_dir, settings.app_id).add(
        LagSample(at=now, lag=lag), settings.status_lag_interval
    )
    return lag_trend(samples, settings.status_lag_interval, now)


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
        print(json.dumps(report, indent=None if not console.is_terminal else 2), flush=True)
        return
    lines: list[tuple[str, object]] = []
    for key, value in report.items():
        if key in ("topics", "drift", "problems"):
            continue
        if key == "worker_last_exit" and isinstance(value, dict):
            value = f"{WorkerExit.model_validate(value).describe()} (log {value['log']})"
        if key == "group" and isinstance(value, dict):
            lines += _group_lines(value)
            continue
        lines.append((key, json.dumps(value) if isinstance(value, dict | list) else value))
    for problem in report.get("problems") or []:  # type: ignore[attr-defined]
        lines.append(("problem", problem))
    for drift in report.get("drift") or []:  # type: ignore[attr-defined]
        lines.append(("drift", drift["message"]))
    for key, value in lines:
        console.print(f"{key:<16} {value}", soft_wrap=True, markup=False, highlight=False)
    topics = report.get("topics")
    if isinstance(topics, dict) and topics:
        console.print()
        columns = ("partitions", "replication", "lag")
        rows = [[name, *(info.get(c) for c in columns)] for name, info in topics.items()]
        print_table(console, ["topic", *columns], rows)


def _group_lines(group: dict[str, Any]) -> list[tuple[str, object]]:
    members = group["members"]
    trend = group["lag_trend"]
    over = f"{group['lag_interval']:g} s"
    said = {
        "unknown": f"whether it grows is known once status has run {over} apart",
        "growing": f"grew over the last {over}",
        "steady": f"did not keep growing over the last {over}",
    }
    lines: list[tuple[str, object]] = [
        ("group", f"{group['group']} ({group['state']}, {plural(len(members), 'member')})"),
        ("lag", f"{group['lag']} ({said.get(trend, trend)})"),
    ]
    for member in members:
        assigned = member["assignment"]
        parts = (
            "; ".join(f"{topic} {','.join(map(str, ps))}" for topic, ps in assigned.items())
            if assigned is not None
            else "assignment not reported by the broker"
        )
        where = f" on {member['host']}" if member["host"] else ""
        lines.append(("member", f"{member['member_id']}{where}: {parts}"))
    return lines


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
    stack.stop()
    console.print(
        f"stopped {', '.join(running) or 'nothing (all had exited)'} "
        f"(Elasticsearch data kept in {stack.run_dir / 'es-data'})"
    )


def worker() -> None:
    from elasticsearch import TransportError
    from faust.worker import Worker
    from kafka.errors import KafkaError

    from pipeline import metrics
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
    try:
        if metrics.serve(settings):
            console.print(f"metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    except OSError as exc:  # the port is taken
        console.print(f"[red]error:[/red] cannot serve metrics on port {settings.metrics_port}: {exc}")
        raise typer.Exit(1) from None
    app = create_app(settings, endpoints, model)
    Worker(app, loglevel=settings.worker_log_level, quiet=True).execute_from_commandline()
