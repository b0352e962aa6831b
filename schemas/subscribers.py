"""Contract of the subscribers file (``PANTAU_ALERTS_FILE``): who gets which alerts, and through what.

Reading the file (YAML, ``${ENV}`` expansion, errors with line numbers) is ``pipeline/alerts/subscribers.py``;
this module only says what a valid file is.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.alerts import SCHEDULED_KINDS, Alert, AlertKind, Severity
from schemas.vocab import Agency, Category, Region

CHANNELS = ("webhook", "telegram", "whatsapp", "email", "slack")
BRIEF_CHANNELS = ("email", "telegram")
"""Channels that carry a file: the brief goes as an e-mail attachment or a Telegram document."""
_CLOCK = r"(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?"
"""HH:MM, or HH:MM:SS (so a test, or a drill, can make quiet hours or a digest seconds away)."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
JAKARTA = ZoneInfo("Asia/Jakarta")
_ADDRESS = r"[^@\s<>]+@[^@\s<>]+"
"""An e-mail address, loosely; no whitespace, so nothing can start another header line (``\nBcc:``)."""
_SENDER = rf"{_ADDRESS}|[^\x00-\x1f\x7f-\x9f\u2028\u2029<>]*<{_ADDRESS}>"
"""``pantau@example.org`` or ``Pantau Banten <pantau@example.org>``."""


def _no_spaces(value: str) -> str:
    """A token that goes into a header or a URL path: whitespace or a control character would end the
    header or the path early, so it is refused here (without echoing the secret)."""
    if re.search(r"[\s\x00-\x1f\x7f]", value):
        raise ValueError("must not contain whitespace or control characters")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Match(_Strict):
    """Keys combine with AND, the values of one list with OR; a missing key matches everything."""

    kinds: list[AlertKind] | None = None
    agencies: list[Agency] | None = None
    regions: list[Region] | None = None
    categories: list[Category] | None = None
    min_severity: Severity = Severity.INFO

    @field_validator("regions", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        """``regions: [3602]`` (unquoted in YAML) means the BPS code too."""
        return [str(v) if isinstance(v, int) else v for v in value] if isinstance(value, list) else value

    def matches(self, alert: Alert) -> bool:
        if alert.test:
            return True
        if alert.kind in SCHEDULED_KINDS and (self.kinds is None or alert.kind not in self.kinds):
            return False  # a digest is asked for by name: a pager that takes "everything" is not sent one
        if self.kinds is not None and alert.kind not in self.kinds:
            return False
        if self.agencies is not None and not set(alert.agencies) & set(self.agencies):
            return False
        if self.regions is not None and alert.region not in self.regions:
            return False
        if self.categories is not None and alert.category not in self.categories:
            return False
        return alert.severity.rank >= self.min_severity.rank


class WebhookChannel(_Strict):
    url: str = Field(pattern=r"^https?://")
    secret: str = Field(description="Standard Webhooks secret: whsec_ + base64 of the key")

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, value: str) -> str:
        if not value.startswith("whsec_"):
            raise ValueError("must start with whsec_ (Standard Webhooks secret)")
        try:
            key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
        except ValueError:
            raise ValueError("is not base64 after whsec_") from None
        if len(key) < 16:
            raise ValueError("key is shorter than 16 bytes")
        return value

    def key(self) -> bytes:
        return base64.b64decode(self.secret.removeprefix("whsec_"))


class TelegramChannel(_Strict):
    bot_token: str = Field(min_length=1)
    chat_id: str = Field(min_length=1)
    api_base: str = Field("https://api.telegram.org", pattern=r"^https?://")

    @field_validator("chat_id", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: str) -> str:
        """It is part of the URL path: ``/bot<token>/sendMessage``."""
        if "/" in value or "?" in value or "#" in value:
            raise ValueError("must not contain / ? or #")
        return _no_spaces(value)


class WhatsAppChannel(_Strict):
    access_token: str = Field(min_length=1)
    phone_number_id: str = Field(min_length=1)
    to: str = Field(min_length=1, description="recipient phone number, international format")
    api_base: str = Field("https://graph.facebook.com/v21.0", pattern=r"^https?://")

    @field_validator("phone_number_id", "to", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @field_validator("access_token")
    @classmethod
    def _token(cls, value: str) -> str:
        """It goes into the ``Authorization`` header."""
        return _no_spaces(value)


class EmailChannel(_Strict):
    to: list[str] = Field(min_length=1)
    smtp_url: str | None = Field(None, pattern=r"^smtps?://", description="else PANTAU_SMTP_URL")
    sender: str | None = Field(None, alias="from", description="From address; else the SMTP user")

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(_ADDRESS, address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        """It becomes the From header: checked like ``to``, so the file is refused, not every send."""
        if value is not None and not re.fullmatch(_SENDER, value):
            raise ValueError(f"{value!r} is not an e-mail address (or Name <address>)")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        """A port out of range would fail every send; the URL (it holds a password) is not echoed."""
        if value is None:
            return value
        try:
            parts = urllib.parse.urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        if port == 0:
            raise ValueError("has a port that is not a number from 1 to 65535")
        if not parts.hostname:
            raise ValueError("has no host")
        return value


class SlackChannel(_Strict):
    url: str = Field(pattern=r"^https?://")


class BriefSchedule(_Strict):
    """The HTML brief (`pantau report`) on a schedule: ``every: weekly, at: "Mon 07:00"`` covers the seven
    days before each Monday 07:00 Asia/Jakarta, ``every: daily, at: "07:00"`` the day before."""

    every: Literal["daily", "weekly"] = "weekly"
    at: str = Field("Mon 07:00", description='Asia/Jakarta: "Mon 07:00" weekly, "07:00" daily')
    agency: Agency | None = Field(None, description="narrow the brief to one agency")
    region: Region | None = Field(None, description="narrow the brief to one kab/kota (BPS code)")
    lang: Literal["id", "en"] | None = Field(None, description="else the subscriber's lang")
    pdf: bool = Field(False, description="also a PDF, printed by headless Chromium")

    @field_validator("region", mode="before")
    @classmethod
    def _code_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _at_fits_every(self) -> BriefSchedule:
        weekly = f"^(?:{'|'.join(WEEKDAYS)}) {_CLOCK}$"
        if self.every == "weekly" and not re.fullmatch(weekly, self.at):
            raise ValueError(f'at: {self.at!r} is not a weekday and a time, e.g. "Mon 07:00"')
        if self.every == "daily" and not re.fullmatch(_CLOCK, self.at):
            raise ValueError(f'at: {self.at!r} is not a time, e.g. "07:00"')
        return self

    @property
    def length(self) -> timedelta:
        return timedelta(days=7 if self.every == "weekly" else 1)

    def due(self, now: datetime) -> datetime:
        """The latest scheduled time at or before ``now``: the end of the period the brief covers, and what
        names it (one brief per subscriber and period)."""
        clock = self.at.split(" ")[-1]
        hours, minutes, *seconds = (int(part) for part in clock.split(":"))
        local = now.astimezone(JAKARTA)
        at = datetime.combine(local.date(), clock_time(hours, minutes, seconds[0] if seconds else 0), JAKARTA)
        if self.every == "weekly":
            at -= timedelta(days=(local.weekday() - WEEKDAYS.index(self.at[:3])) % 7)
        while at > local:
            at -= self.length
        return at


class Subscriber(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    webhook: WebhookChannel | None = None
    telegram: TelegramChannel | None = None
    whatsapp: WhatsAppChannel | None = None
    email: EmailChannel | None = None
    slack: SlackChannel | None = None
    match: Match = Field(default_factory=Match)
    mode: Literal["realtime", "digest"] = "realtime"
    digest_at: str = Field("07:00", pattern=f"^{_CLOCK}$", description="Asia/Jakarta time of the digest")
    quiet_hours: str | None = Field(
        None, pattern=f"^{_CLOCK}-{_CLOCK}$", description="Asia/Jakarta; critical emergencies override"
    )
    lang: Literal["id", "en"] = "id"
    resolved: bool = Field(True, description="also send resolved notices")
    repeat_interval: float | None = Field(
        None,
        gt=0,
        description="seconds before a still-firing alert is sent again; else PANTAU_ALERTS_REPEAT_INTERVAL",
    )
    brief: BriefSchedule | None = Field(None, description="the HTML brief on a schedule (e-mail, Telegram)")

    @model_validator(mode="after")
    def _one_channel(self) -> Subscriber:
        given = [name for name in CHANNELS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"needs exactly one channel ({', '.join(CHANNELS)}), got {', '.join(given) or 'none'}"
            )
        return self

    @model_validator(mode="after")
    def _brief_channel(self) -> Subscriber:
        if self.brief is not None and self.channel not in BRIEF_CHANNELS:
            raise ValueError(f"brief: goes by {' or '.join(BRIEF_CHANNELS)} only, not {self.channel}")
        return self

    @property
    def channel(self) -> str:
        return next(name for name in CHANNELS if getattr(self, name) is not None)


class SubscribersFile(_Strict):
    subscribers: list[Subscriber] = Field(default_factory=list)

    @field_validator("subscribers")
    @classmethod
    def _unique_names(cls, value: list[Subscriber]) -> list[Subscriber]:
        seen: set[str] = set()
        for sub in value:
            if sub.name in seen:
                raise ValueError(f"subscriber name {sub.name!r} is used twice")
            seen.add(sub.name)
        return value

    def get(self, name: str) -> Subscriber | None:
        return next((s for s in self.subscribers if s.name == name), None)
