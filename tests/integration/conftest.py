"""Session fixtures: the real embedded Kafka and Elasticsearch, and a real worker under its supervisor.

Every integration test shares this one stack (starting the servers and loading the model in a worker takes
most of a minute), and leaves it as it found it: servers up, one supervised worker running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaProducer

from pipeline.embedded.process import ServerState
from pipeline.embedded.stack import EmbeddedStack, Endpoints, wait_for_worker_log
from pipeline.kafka.producer import make_producer
from pipeline.settings import Settings, get_settings
from pipeline.sinks.elasticsearch import sync_client


class Pipeline:
    """Handle on the running stack for tests: produce, wait, read back."""

    def __init__(self, settings: Settings, stack: EmbeddedStack, endpoints: Endpoints) -> None:
        self.settings = settings
        self.stack = stack
        self.endpoints = endpoints
        self.es: Elasticsearch = sync_client(settings, endpoints.elasticsearch)
        self.producer: KafkaProducer = make_producer(settings, endpoints.kafka)
        self.metrics_port = free_port()

    def send_raw(self, value: bytes, key: bytes | None = None) -> None:
        self.producer.send(self.settings.topic_raw, key=key, value=value).get(timeout=30)

    def send_post(self, post: dict[str, Any]) -> str:
        key = f"{post['platform']}:{post['id']}"
        self.send_raw(json.dumps(post).encode(), key.encode())
        return key

    def restart_worker(self, kill: bool = False) -> None:
        """SIGKILL the worker and let its supervisor start another, or stop both (SIGTERM, as `pantau down`
        does) and start them again."""
        worker = self.stack.worker()
        assert worker is not None
        if kill:
            os.killpg(worker.pid, signal.SIGKILL)
            self.wait_for_restart(worker)
        else:
            self.stack.stop_worker()
            self.start_worker()

    def start_worker(self) -> None:
        """Start the supervised worker, serving metrics on ``metrics_port``: only its supervisor gets the
        port (other workers the tests start, such as a benchmark's, would find it taken)."""
        os.environ.update(PANTAU_METRICS_PORT=str(self.metrics_port), PANTAU_METRICS_HOST="127.0.0.1")
        try:
            worker = self.stack.start_worker()
        finally:
            os.environ.pop("PANTAU_METRICS_PORT", None)
            os.environ.pop("PANTAU_METRICS_HOST", None)
        wait_for_worker_log(Path(worker.log), pid=worker.pid, timeout=180)

    def wait_for_restart(self, gone: ServerState, timeout: float = 60.0) -> ServerState:
        """The worker the supervisor started after ``gone``, once it is ready."""
        deadline = time.monotonic() + timeout
        while (worker := self.stack.worker()) is None or worker.pid == gone.pid:
            assert time.monotonic() < deadline, f"no worker after {gone.pid}: {self.stack.read_supervision()}"
            time.sleep(0.2)
        wait_for_worker_log(Path(worker.log), pid=worker.pid, timeout=180)
        return worker

    def document(self, key: str) -> dict[str, Any]:
        self.es.indices.refresh(index=self.settings.index_alias)
        hits = self.es.search(index=self.settings.index_alias, query={"ids": {"values": [key]}})["hits"][
            "hits"
        ]
        assert len(hits) == 1, hits
        return dict(hits[0]["_source"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_post(text: str, **fields: Any) -> dict[str, Any]:
    post = {
        "id": f"t{uuid.uuid4().hex[:16]}",
        "platform": "x",
        "text": text,
        "created_at": datetime(2026, 11, 20, 8, 30, tzinfo=UTC).isoformat(),
    }
    post.update(fields)
    return post


def pantau(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `pantau` command as users run it, against the session's stack (its PANTAU_* are in os.environ,
    ``env`` adds to them), its output piped as a script reads it."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def processes_of(run_dir: Path) -> list[int]:
    """Processes (other than this one) started with ``run_dir`` as their PANTAU_RUN_DIR: the servers, the
    supervisor and the worker all inherit it."""
    marker = f"PANTAU_RUN_DIR={run_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    run_dir = tmp_path_factory.mktemp("pantau-run")
    env = {
        "PANTAU_RUN_DIR": str(run_dir),
        "PANTAU_COMMIT_INTERVAL": "1.0",
        "PANTAU_INDEX_PREFIX": "test-posts",
        "PANTAU_TOPICS_INDEX": "test-topics",
        "PANTAU_TOPICS_UPDATE_INTERVAL": "2",
        "PANTAU_STATUS_LAG_INTERVAL": "86400",  # scattered status calls of a long session judge no trend
        "PANTAU_RESPONSES_INDEX": "test-responses",
        "PANTAU_RESPONSE_SLA_AGENCIES": '{"dishub": 20}',  # so a test sees a complaint turn overdue
        "PANTAU_RESPONSE_CHECK_INTERVAL": "2",
        "PANTAU_RESPONSE_DIGEST_EVERY": "20",  # an overdue_response digest every 20 s, not daily
        "PANTAU_BRIEF_CHECK_INTERVAL": "2",
        "PANTAU_ALERTS_FILE": str(run_dir / "alerts.yaml"),
        "PANTAU_ALERTS_INDEX": "test-alerts",
        "PANTAU_DELIVERIES_INDEX": "test-deliveries",
        "PANTAU_ALERTS_GROUP_WAIT": "1",
        "PANTAU_ALERTS_RETRY_BACKOFF": "1",
        "PANTAU_ALERTS_RETRY_MAX_ATTEMPTS": "3",
    }
    saved = {k: os.environ.get(k) for k in [*env, "PANTAU_KAFKA_BOOTSTRAP", "PANTAU_ES_URL"]}
    os.environ.update(env)
    os.environ.pop("PANTAU_KAFKA_BOOTSTRAP", None)
    os.environ.pop("PANTAU_ES_URL", None)
    get_settings.cache_clear()
    settings = get_settings()
    stack = EmbeddedStack(settings)
    try:
        state = stack.start_servers()
        from rich.console import Console

        from pipeline.provision import prepare_cluster

        prepare_cluster(settings, state.endpoints, Console(quiet=True))
        handle = Pipeline(settings, stack, state.endpoints)
        handle.start_worker()
        yield handle
        handle.producer.close()
        handle.es.close()
    finally:
        problem = _down(stack, run_dir)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
    assert problem is None, problem


def _down(stack: EmbeddedStack, run_dir: Path) -> str | None:
    """`pantau down`, as a user runs it; what went wrong, if anything: it failed, or it left processes of the
    stack running (which are then killed)."""
    result = pantau("down")
    if result.returncode != 0:
        stack.stop()
        return f"`pantau down` failed: {result.stdout}{result.stderr}"
    deadline = time.monotonic() + 5
    while (left := processes_of(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return f"`pantau down` left processes running: {left}" if left else None
