"""Per-connector state a running connector writes and ``pantau ingest status`` reads: last poll, cursors,
posts fetched and sent, rate limit, today's quota."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pipeline.settings import Settings
from pipeline.sources.cursors import cursor_dir


class RateLimit(BaseModel):
    remaining: int | None = None
    reset_at: datetime | None = None
    waiting_until: datetime | None = None
    limited: int = 0


class Quota(BaseModel):
    day: date
    used: int = 0
    budget: int


class ConnectorMetrics(BaseModel):
    connector: str
    platform: str
    pid: int | None = None
    started_at: datetime | None = None
    last_poll: datetime | None = None
    next_round: datetime | None = None
    last_error: str | None = None
    state: str = "idle"
    """``polling``, ``waiting`` (rate limit or back-off), ``idle`` between rounds, ``stopped``,
    ``quota spent``, ``failed``."""
    fetched: int = 0
    sent: int = 0
    rejected: int = 0
    deleted: int = 0
    requests: int = 0
    queries: list[str] = []
    cursors: dict[str, dict[str, Any]] = {}
    rate_limit: RateLimit = RateLimit()
    quota: Quota | None = None


def metrics_file(settings: Settings, connector: str) -> Path:
    return cursor_dir(settings) / f"{connector}.metrics.json"


def read_metrics(settings: Settings, connector: str) -> ConnectorMetrics | None:
    try:
        return ConnectorMetrics.model_validate_json(metrics_file(settings, connector).read_bytes())
    except (OSError, ValidationError):
        return None


def all_metrics(settings: Settings) -> list[ConnectorMetrics]:
    found = []
    for path in sorted(cursor_dir(settings).glob("*.metrics.json")):
        metrics = read_metrics(settings, path.name.removesuffix(".metrics.json"))
        if metrics is not None:
            found.append(metrics)
    return found


def write_metrics(settings: Settings, metrics: ConnectorMetrics) -> None:
    path = metrics_file(settings, metrics.connector)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(metrics.model_dump(mode="json"), indent=1), encoding="utf-8")
    temporary.replace(path)


def today() -> date:
    return datetime.now(UTC).date()
