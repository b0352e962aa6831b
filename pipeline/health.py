"""What a worker cannot do right now, in a file of the run directory that ``pantau status`` reads.

A worker that is alive but stuck (the dead-letter topic refuses letters, say) must not look healthy: it
stops consuming rather than lose a message, and says why here until the problem is gone.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field


class Problem(BaseModel):
    reason: str
    since: datetime


class WorkerHealth(BaseModel):
    pid: int
    updated_at: datetime
    problems: dict[str, Problem] = Field(default_factory=dict)


def health_dir(run_dir: Path) -> Path:
    return run_dir / "health"


class HealthReporter:
    """One file per worker process: ``<run_dir>/health/<pid>.json``."""

    def __init__(self, run_dir: Path, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()
        self.path = health_dir(run_dir) / f"{self.pid}.json"
        self.health = WorkerHealth(pid=self.pid, updated_at=datetime.now(UTC))

    def problem(self, name: str, reason: str) -> None:
        known = self.health.problems.get(name)
        if known is not None and known.reason == reason:
            return
        since = known.since if known else datetime.now(UTC)
        self.health.problems[name] = Problem(reason=reason, since=since)
        self._write()

    def resolved(self, name: str) -> None:
        if self.health.problems.pop(name, None) is not None:
            self._write()

    def _write(self) -> None:
        self.health.updated_at = datetime.now(UTC)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(self.health.model_dump_json(indent=2))
            os.replace(tmp, self.path)
        except OSError:  # a read-only run directory must not stop the worker
            pass


def read_health(run_dir: Path) -> list[WorkerHealth]:
    """Every worker's health file; files of processes that are gone are left out."""
    found = []
    for path in sorted(health_dir(run_dir).glob("*.json")):
        try:
            health = WorkerHealth.model_validate_json(path.read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(health.pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        found.append(health)
    return found
