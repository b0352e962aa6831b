"""The SLA clock: calendar seconds by default; with business hours on, only working hours in Asia/Jakarta
(Monday to Friday, not on a public holiday) count, for the elapsed time and for the due date alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict

JAKARTA = ZoneInfo("Asia/Jakarta")
HOLIDAYS = files("pipeline.responsiveness").joinpath("data", "holidays.yaml")


class HolidaysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holidays: list[date] = []


def load_holidays(extra: Path | None = None) -> set[date]:
    """The packaged national holidays plus the deployer's file."""
    texts = [HOLIDAYS.read_text(encoding="utf-8")]
    if extra is not None:
        texts.append(extra.read_text(encoding="utf-8"))
    days: set[date] = set()
    for text in texts:
        days.update(HolidaysFile.model_validate(yaml.safe_load(text) or {}).holidays)
    return days


def parse_hours(text: str) -> tuple[time, time]:
    """``08:00-16:00`` → (08:00, 16:00)."""
    start, _, end = text.partition("-")
    opens, closes = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    if closes <= opens:
        raise ValueError(f"{text!r}: the day must close after it opens")
    return opens, closes


class SlaClock:
    def __init__(
        self,
        default_sla: int,
        per_agency: Mapping[str, int] | None = None,
        business_hours: tuple[time, time] | None = None,
        holidays: Iterable[date] = (),
    ) -> None:
        self.default_sla = default_sla
        self.per_agency = dict(per_agency or {})
        self.hours = business_hours
        self.holidays = frozenset(holidays)

    def sla(self, agency: str) -> int:
        return self.per_agency.get(agency, self.default_sla)

    def elapsed(self, start: datetime, end: datetime) -> int:
        """Seconds from ``start`` to ``end`` that count (never negative)."""
        if end <= start:
            return 0
        if self.hours is None:
            return int((end - start).total_seconds())
        total = 0.0
        for opens, closes in self._working_spans(start):
            if opens >= end:
                break
            total += max(0.0, (min(closes, end) - max(opens, start)).total_seconds())
        return int(total)

    def due(self, start: datetime, agency: str) -> datetime:
        """When ``agency``'s SLA for a complaint made at ``start`` runs out."""
        left = float(self.sla(agency))
        if self.hours is None:
            return start + timedelta(seconds=left)
        for opens, closes in self._working_spans(start):
            begin = max(opens, start)
            span = (closes - begin).total_seconds()
            if span <= 0:
                continue
            if span >= left:
                return begin + timedelta(seconds=left)
            left -= span
        raise AssertionError("unreachable: working spans never end")

    def _working_spans(self, start: datetime) -> Iterable[tuple[datetime, datetime]]:
        """Working hours from ``start``'s day on, in order (an endless generator)."""
        assert self.hours is not None
        day = start.astimezone(JAKARTA).date()
        while True:
            if day.weekday() < 5 and day not in self.holidays:
                yield (
                    datetime.combine(day, self.hours[0], JAKARTA),
                    datetime.combine(day, self.hours[1], JAKARTA),
                )
            day += timedelta(days=1)
