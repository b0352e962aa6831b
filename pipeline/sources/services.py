"""Running the connectors a deployment wants (``PANTAU_SOURCES_FILE``) unattended: each as its own
``pantau ingest <name>`` process, started again with back-off whenever it exits. ``pantau ingest all`` does
it in the foreground (the compose service); ``pantau up`` starts that in the background and ``pantau down``
stops it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.embedded.process import ServerState, spawn_process
from pipeline.settings import Settings
from pipeline.sources.cursors import cursor_dir

log = logging.getLogger("pantau.ingest")

SourceName = Literal[
    "x", "x-stream", "x-compliance", "youtube", "instagram", "facebook", "mastodon", "rss", "serve"
]
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
"""A connector that keeps failing (a refused token) is asked again at most every 5 minutes."""
STABLE_AFTER = 300.0
STOP_TIMEOUT = 30.0


class SourcesFile(BaseModel):
    """``PANTAU_SOURCES_FILE``: ``connectors: [x, mastodon, rss, serve]``."""

    model_config = ConfigDict(extra="forbid")

    connectors: list[SourceName]


class SourcesFileError(ValueError):
    pass


def read_sources(path: Path) -> list[SourceName]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names = SourcesFile.model_validate(raw).connectors
    except (OSError, yaml.YAMLError) as exc:
        raise SourcesFileError(f"{path}: cannot read: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise SourcesFileError(f"{path}: {problems}") from None
    return list(dict.fromkeys(names))


def command(name: SourceName) -> list[str]:
    """``x-stream`` is ``pantau ingest x --stream``, ``x-compliance`` ``pantau ingest x --compliance``."""
    platform, _, mode = name.partition("-")
    return [sys.executable, "-m", "pipeline.cli", "ingest", platform, *([f"--{mode}"] if mode else [])]


@dataclass
class Child:
    name: SourceName
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = BACKOFF_FIRST
    restart_at: float = 0.0


def supervise(names: list[SourceName], stop: threading.Event, env: Mapping[str, str] | None = None) -> None:
    """Run every connector until ``stop``; one that exits is started again after a delay that doubles up
    to ``BACKOFF_MAX`` and drops back once one stayed up ``STABLE_AFTER`` seconds."""
    children = [Child(name) for name in names]
    try:
        while not stop.is_set():
            now = time.monotonic()
            for child in children:
                if child.process is not None and (code := child.process.poll()) is not None:
                    if now - child.started >= STABLE_AFTER:
                        child.delay = BACKOFF_FIRST
                    child.restart_at = now + child.delay
                    log.warning(
                        "ingest %s exited with status %s; started again in %.0f s",
                        child.name,
                        code,
                        child.delay,
                    )
                    child.delay = min(child.delay * 2, BACKOFF_MAX)
                    child.process = None
                if child.process is None and now >= child.restart_at:
                    child.process = subprocess.Popen(command(child.name), env=dict(env) if env else None)
                    child.started = now
                    log.info("ingest %s started (pid %d)", child.name, child.process.pid)
            stop.wait(0.5)
    finally:
        running = [c.process for c in children if c.process is not None and c.process.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _record(settings: Settings) -> Path:
    return cursor_dir(settings) / "connectors.json"


def start_in_background(settings: Settings, kafka: str, elasticsearch: str) -> str:
    """``pantau up``: start ``pantau ingest all`` detached unless it runs; one line saying what happened."""
    if settings.sources_file is None:
        return "connectors     none (PANTAU_SOURCES_FILE is not set)"
    names = read_sources(settings.sources_file)
    record = _record(settings)
    try:
        running = ServerState.model_validate_json(record.read_text())
    except (OSError, ValidationError):
        running = None
    if running is not None and running.alive():
        return f"connectors     already running (pid {running.pid}, log {running.log})"
    env = {
        **os.environ,
        "PANTAU_KAFKA_BOOTSTRAP": kafka,
        "PANTAU_ES_URL": elasticsearch,
        "PYTHONUNBUFFERED": "1",
    }
    logs = settings.run_dir / "logs" / "connectors.log"
    process = spawn_process([sys.executable, "-m", "pipeline.cli", "ingest", "all"], logs, env=env)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(ServerState.spawned(process.pid, logs).model_dump_json())
    return f"connectors     {', '.join(names)} (pid {process.pid}, log {logs}; each restarted if it exits)"


def stop_background(settings: Settings) -> bool:
    """``pantau down``: stop ``pantau ingest all`` (which stops its connectors); whether one ran."""
    record = _record(settings)
    try:
        running = ServerState.model_validate_json(record.read_text())
    except (OSError, ValidationError):
        return False
    alive = running.alive()
    running.stop(timeout=STOP_TIMEOUT + 5)
    record.unlink(missing_ok=True)
    return alive
