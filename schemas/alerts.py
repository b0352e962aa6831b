"""Contract of the alerts: what ``pantau.alerts`` carries, ``pantau-alerts`` indexes and webhooks receive."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.posts import TopicRef
from schemas.vocab import Agency, Category, Region


class AlertKind(StrEnum):
    SPIKE = "spike"
    NEGATIVE_SURGE = "negative_surge"
    EMERGENCY = "emergency"
    EMERGING_TOPIC = "emerging_topic"
    SILENCE = "silence"
    OVERDUE_RESPONSE = "overdue_response"


SCHEDULED_KINDS = frozenset({AlertKind.OVERDUE_RESPONSE})
"""Kinds raised on a schedule, one alert per period with the period in its id: sent once, never repeated
as a reminder and never held back by the cooldown of the previous period's alert."""


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self]


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertExample(BaseModel):
    """A post behind the alert; its text is the enriched, PII-masked text."""

    key: str
    text: str = Field(max_length=1000)
    url: str | None = None


def alert_id(key: str, started: datetime) -> str:
    """The same subject starting at the same bucket is the same alert, after a restart or a replay."""
    digest = hashlib.sha256(f"{key}|{started.isoformat()}".encode()).hexdigest()
    return f"al_{digest[:20]}"


class Alert(BaseModel):
    """One state of one alert. ``id`` names the episode (a subject from the moment it fired until it
    resolved) and stays the same across restarts and replays; ``revision`` rises when it escalates or
    resolves, so (id, revision) names what a subscriber was told."""

    model_config = ConfigDict(json_schema_extra={"title": "Alert"})

    id: str = Field(description="stable id of the episode: same after a restart or a replay")
    key: str = Field(description="the subject, e.g. spike:agency=pdam,region=3673; shared by episodes")
    revision: int = Field(1, ge=1, description="raised when the alert escalates or resolves")
    kind: AlertKind
    severity: Severity
    status: AlertStatus = AlertStatus.FIRING
    agencies: list[Agency] = Field(default_factory=list)
    region: Region | None = None
    category: Category | None = None
    topic: TopicRef | None = None
    window_start: AwareDatetime
    window_end: AwareDatetime
    count: int = Field(ge=0, description="distinct posts in the window")
    expected: float = Field(ge=0, description="the baseline for the window")
    summary: str = Field(description="one sentence in Indonesian")
    examples: list[AlertExample] = Field(default_factory=list, max_length=3)
    kibana_url: str | None = Field(None, description="Discover link (from PANTAU_KIBANA_URL)")
    raised_at: AwareDatetime = Field(description="when the detector decided this revision (wall clock)")
    test: bool = Field(False, description="a test alert from `pantau subscribers test`")
