"""Whether the workers fall behind: consumer-lag samples kept between ``pantau status`` runs.

One status run sees one lag; a health check runs it every so often. Each run adds its sample to a small
file in the run directory, so a lag that only grew over ``PANTAU_STATUS_LAG_INTERVAL`` seconds is seen
whether status runs once a minute from a health check or every few seconds with ``--watch``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, TypeAdapter

Trend = Literal["growing", "steady", "unknown"]


class LagSample(BaseModel):
    at: datetime
    lag: int


_SAMPLES = TypeAdapter(list[LagSample])


def lag_trend(samples: list[LagSample], interval: float, now: datetime) -> Trend:
    """``growing`` when the lag rose over the last ``interval`` seconds and never fell in between, seen in
    at least three samples (two readings of a busy stream are as likely to rise as not); ``unknown``
    until there is a sample at least ``interval`` old to compare with."""
    ordered = sorted(samples, key=lambda s: s.at)
    cutoff = now - timedelta(seconds=interval)
    older = [s for s in ordered if s.at <= cutoff]
    if not older:
        return "unknown"
    window = [older[-1], *[s for s in ordered if s.at > cutoff]]
    rising = all(b.lag >= a.lag for a, b in pairwise(window))
    growing = rising and len(window) >= 3 and window[-1].lag > window[0].lag
    return "growing" if growing else "steady"


class LagHistory:
    """Samples of one consumer group's total lag, ``<run_dir>/lag/<group>.json``; a run directory that
    cannot be written (read-only) only means the trend stays unknown."""

    def __init__(self, run_dir: Path, group: str) -> None:
        self.path = run_dir / "lag" / f"{group}.json"

    def load(self) -> list[LagSample]:
        try:
            return _SAMPLES.validate_json(self.path.read_bytes())
        except (OSError, ValueError):
            return []

    def add(self, sample: LagSample, interval: float) -> list[LagSample]:
        """Add ``sample``; keep what the next trend needs (the newest sample older than the interval and
        those after it). Returns the kept samples."""
        samples = sorted([*self.load(), sample], key=lambda s: s.at)
        cutoff = sample.at - timedelta(seconds=interval)
        older = [s for s in samples if s.at <= cutoff]
        kept = older[-1:] + [s for s in samples if s.at > cutoff]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(_SAMPLES.dump_json(kept))
            os.replace(tmp, self.path)
        except OSError:
            pass
        return kept
