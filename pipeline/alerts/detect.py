"""Alert detection as stages: what the enriched stream says, turned into alerts.

Two steps, because detection needs every post in one place while the enriched topic has many partitions:
``AlertObserver`` (runs for each enriched partition and for ``pantau.topics``) turns a post into a small
``AlertInput`` on the one-partition ``pantau.alerts.input``; ``AlertDetector`` (one owner, state in Faust
tables with a copy in Elasticsearch) counts them and decides.

Counts are by stream time (``created_at``) in buckets of ``alerts_bucket`` seconds, by distinct post key
(a redelivered post is recognised and not counted twice), without the agencies' own accounts. Silence is
judged in wall time, since stream time stops when the stream does.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from pipeline.alerts.counting import (
    binomial_upper_tail,
    expected_count,
    level_factor,
    nb_upper_tail,
    weekend_ratio,
)
from pipeline.settings import Settings
from pipeline.stages.records import Failed, Outgoing, Record
from pipeline.validation import describe_validation_error
from schemas.alerts import Alert, AlertExample, AlertKind, AlertStatus, Severity, alert_id
from schemas.documents import PostDocument
from schemas.posts import EnrichedPost, TopicRef
from schemas.topics import EmergingTopic
from schemas.vocab import REGION_NAMES, Agency, Category, Region, SentimentLabel

log = logging.getLogger("pantau.alerts")
JAKARTA = ZoneInfo("Asia/Jakarta")
EXAMPLE_CHARS = 280
URGENT = re.compile(
    r"\b(tolong|darurat|segera|sos|evakuasi|korban|terjebak|hanyut|tenggelam|terbakar|kebakaran|"
    r"banjir|longsor|gempa|tsunami|kecelakaan|tabrakan|ambruk|roboh|meluap|jebol|puting beliung|"
    r"butuh bantuan|minta bantuan|mengungsi|pengungsi|urgent|help)\b",
    re.IGNORECASE,
)
"""Urgent wording: calls for help and words for an event under way (with category ``bencana``)."""


def post_seen(
    key: str,
    created_at: datetime,
    platform: str,
    agencies: list[Agency],
    region: Region | None,
    category: Category,
    sentiment: SentimentLabel,
    text: str,
    url: str | None,
) -> PostSeen:
    return PostSeen(
        key=key,
        created_at=created_at,
        platform=platform,
        agencies=agencies,
        region=region,
        category=category,
        negative=sentiment == SentimentLabel.NEGATIVE,
        urgent=category == Category.BENCANA and URGENT.search(text) is not None,
        text=text[:EXAMPLE_CHARS],
        url=url,
    )


def seen_from_document(source: dict[str, Any]) -> PostSeen | None:
    """A ``pantau-posts`` document as detection sees it (``pantau alerts test-rule``); None if not counted."""
    document = PostDocument.model_validate(source)
    if not document.is_public_service or document.official_account is not None:
        return None
    return post_seen(
        f"{document.platform.value}:{document.post_id}",
        document.timestamp,
        document.platform.value,
        document.agencies,
        document.region,
        document.category,
        document.sentiment.label,
        document.text,
        document.url,
    )


class PostSeen(BaseModel):
    """What detection needs of one post."""

    key: str
    created_at: AwareDatetime
    platform: str
    agencies: list[Agency] = Field(default_factory=list)
    region: Region | None = None
    category: Category
    negative: bool
    urgent: bool
    text: str
    url: str | None = None


class AlertInput(BaseModel):
    """A ``pantau.alerts.input`` message: a post, a topic update, or a topic that ended."""

    post: PostSeen | None = None
    topic: EmergingTopic | None = None
    topic_ended: str | None = None


class AlertObserver:
    """Enriched posts and topic updates → ``AlertInput`` messages (None for what detection ignores)."""

    def __init__(self, enriched_topic: str, topics_topic: str) -> None:
        self.enriched_topic = enriched_topic
        self.topics_topic = topics_topic

    def observe(self, record: Record) -> Outgoing | Failed | None:
        if record.topic == self.topics_topic:
            if record.key is None:
                return None
            if not record.value:
                tid = record.key.decode("utf-8", "replace")
                return Outgoing(
                    b"topic:" + record.key, AlertInput(topic_ended=tid).model_dump_json().encode()
                )
            try:
                topic = EmergingTopic.model_validate_json(record.value)
            except ValidationError as exc:
                return Failed(record, "alerts", describe_validation_error(exc))
            value = AlertInput(topic=topic).model_dump_json().encode()
            return Outgoing(b"topic:" + topic.id.encode(), value)
        try:
            post = EnrichedPost.model_validate_json(record.value or b"")
        except ValidationError as exc:
            return Failed(record, "alerts", describe_validation_error(exc))
        if not post.is_public_service or post.official_account is not None:
            return None
        seen = post_seen(
            post.key,
            post.created_at,
            post.platform.value,
            post.agencies,
            post.region,
            post.category,
            post.sentiment.label,
            post.text,
            post.url,
        )
        return Outgoing(post.key.encode(), AlertInput(post=seen).model_dump_json().encode())


# -- detector state ---------------------------------------------------------------------------------------


class Bucket(BaseModel):
    """One bucket of stream time: the posts counted (by key) and the counts per series."""

    start: AwareDatetime
    keys: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    negative: dict[str, int] = Field(default_factory=dict)
    examples: dict[str, list[AlertExample]] = Field(default_factory=dict)


class Episode(BaseModel):
    """An alert that fired and has not resolved: its latest state and what decides its end."""

    alert: Alert
    last_bucket: int = Field(description="the last bucket whose evaluation fired (spike, negative surge)")
    last_seen: AwareDatetime | None = Field(None, description="the last post behind it (emergency)")


class EmergencyPost(BaseModel):
    key: str
    created_at: AwareDatetime
    example: AlertExample | None = None
    """Dropped once the post is older than the window (kept only to group late posts)."""
    alerted: bool = False
    """Already behind an emergency: it starts no other."""


EMERGENCY_KEPT = 20
"""Urgent posts kept per region from before the window (key and time only): posts arriving late (another
partition behind, a producer catching up) still find the rest of their cluster."""


class Meta(BaseModel):
    clock: AwareDatetime | None = None
    first_bucket: int | None = None
    arrivals: dict[str, AwareDatetime] = Field(default_factory=dict, description="wall time, per platform")
    emergencies: dict[str, list[EmergencyPost]] = Field(default_factory=dict)


@dataclass
class DetectOutcome:
    alerts: list[Alert] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)


@dataclass(frozen=True)
class DetectorConfig:
    bucket: float = 3600.0
    baseline_days: int = 28
    baseline_min_days: int = 3
    level_days: int = 7
    """Recent days that set the level of the baseline (``level_factor``); 0: the baseline as it is."""
    alpha: float = 0.05
    dispersion: float = 4.0
    min_count: int = 5
    min_ratio: float = 2.0
    negative_min: int = 5
    negative_rise: float = 0.3
    emergency_window: float = 1800.0
    emergency_min_posts: int = 3
    topic_growth: float = 3.0
    topic_min_posts: int = 5
    silence_after: float = 21600.0
    resolve_after: int = 1
    """Closed buckets without the condition before a spike resolves (one: it ended, no flapping within)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DetectorConfig:
        return cls(
            bucket=settings.alerts_bucket,
            baseline_days=settings.alerts_baseline_days,
            baseline_min_days=settings.alerts_baseline_min_days,
            level_days=settings.alerts_level_days,
            alpha=settings.alerts_alpha,
            dispersion=settings.alerts_dispersion,
            min_count=settings.alerts_min_count,
            min_ratio=settings.alerts_min_ratio,
            negative_min=settings.alerts_negative_min,
            negative_rise=settings.alerts_negative_rise,
            emergency_window=settings.alerts_emergency_window,
            emergency_min_posts=settings.alerts_emergency_min_posts,
            topic_growth=settings.alerts_topic_growth,
            topic_min_posts=settings.alerts_topic_min_posts,
            silence_after=settings.alerts_silence_after,
        )

    @property
    def period(self) -> int:
        """Buckets per day (the baseline compares the same bucket of past days)."""
        return max(1, round(86400 / self.bucket))


def series_of(post: PostSeen) -> list[str]:
    """The keys a post counts for: each agency, its region, its category, each (agency, region)."""
    out = [f"agency={a.value}" for a in post.agencies]
    if post.region is not None:
        out.append(f"region={post.region.value}")
        out += [f"agency={a.value},region={post.region.value}" for a in post.agencies]
    out.append(f"category={post.category.value}")
    return out


def _parse_series(series: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in series.split(",") if "=" in part)


def subject_of(series: str) -> str:
    """The series in words for a summary: ``PDAM di Kota Serang``."""
    parts = _parse_series(series)
    words = []
    if "agency" in parts:
        words.append(parts["agency"].upper())
    if "category" in parts:
        words.append("kategori " + parts["category"].replace("_", " "))
    if "region" in parts:
        name = REGION_NAMES.get(Region(parts["region"]), parts["region"])
        words.append(("di " if words else "") + name)
    return " ".join(words)


SPIKE_WINDOWS = (1, 2, 3, 6)
"""Buckets a spike is judged over: the last one alone, and the last 2, 3 and 6 together."""
STILL_RAISED = 1.5
"""A window of several buckets counts only while its last bucket is this far above its baseline, so a
burst that ended resolves instead of being carried by the window for hours."""
BASELINE_SPREAD = 1
"""The baseline reads the same bucket of each past day and this many buckets either side of it: three
times the values of the same hour alone, so a week of history gives a steadier estimate (an hour's
neighbours differ little in the daily cycle)."""


def baseline_buckets(index: int, period: int, days: int, min_days: int, first: int) -> list[int] | None:
    """The buckets the baseline of bucket ``index`` reads (None before ``min_days`` days of history)."""
    past = [index - d * period for d in range(1, days + 1) if index - d * period >= first]
    if len(past) < min_days:
        return None
    spread = range(-BASELINE_SPREAD, BASELINE_SPREAD + 1)
    return [i + k for i in past for k in spread if i + k >= first and i + k < index]


@functools.lru_cache(maxsize=16384)
def weekend_bucket(index: int, bucket: float) -> bool:
    """Whether bucket ``index`` starts on a Saturday or Sunday in Asia/Jakarta."""
    return datetime.fromtimestamp(index * bucket, UTC).astimezone(JAKARTA).weekday() >= 5


@dataclass
class PeriodTotals:
    """Posts per key in a bucket's baseline period (from ``low``), by kind of day, and since ``since``
    (the level window); and the keys' baselines for the bucket, worked out from them."""

    low: int
    since: int
    posts: dict[bool, dict[str, int]] = field(default_factory=lambda: {True: {}, False: {}})
    buckets: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})
    recent: dict[str, int] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)


STATE_BUCKET = b"bucket:"
STATE_EPISODE = b"episode:"
STATE_META = b"meta"


class AlertDetector:
    """Counts and decisions; one instance owns ``pantau.alerts.input``'s one partition."""

    def __init__(
        self, config: DetectorConfig, kibana_url: str | None = None, posts_view: str = "pantau-posts"
    ):
        self.config = config
        self.kibana_url = kibana_url.rstrip("/") if kibana_url else None
        self.posts_view = posts_view
        self.buckets: dict[int, Bucket] = {}
        self.seen: dict[str, int] = {}  # post key → its bucket
        self.episodes: dict[str, Episode] = {}
        self.meta = Meta()
        self.topics: dict[str, EmergingTopic] = {}
        self.dirty: set[bytes] = set()
        self.deleted: set[bytes] = set()
        self.restored = False
        # A bucket's baseline reads only earlier buckets: kept until a post lands in an earlier bucket
        # (four weeks are read, so each bucket's period is summed once for every key, not once per key).
        self._periods: dict[int, PeriodTotals] = {}

    # -- state ---------------------------------------------------------------------------------------

    def restore(self, entries: list[tuple[bytes, bytes]]) -> None:
        """The state from table (or Elasticsearch copy) entries; an unreadable one is left out, logged."""
        for key, value in entries:
            try:
                if key.startswith(STATE_BUCKET):
                    bucket = Bucket.model_validate_json(value)
                    index = int(key.removeprefix(STATE_BUCKET))
                    self.buckets[index] = bucket
                    for post_key in bucket.keys:
                        self.seen[post_key] = index
                elif key.startswith(STATE_EPISODE):
                    episode = Episode.model_validate_json(value)
                    self.episodes[episode.alert.key] = episode
                elif key == STATE_META:
                    self.meta = Meta.model_validate_json(value)
            except (ValidationError, ValueError) as exc:
                log.warning("alert state entry %r unreadable, left out: %s", key, exc)
        self._periods.clear()
        self.restored = True
        log.info(
            "alert detection restored: %d buckets, %d open alerts", len(self.buckets), len(self.episodes)
        )

    def changes(self) -> dict[bytes, bytes | None]:
        """Entries written since the last call (None: delete)."""
        out: dict[bytes, bytes | None] = {}
        for key in self.deleted:
            out[key] = None
        for key in self.dirty:
            if key.startswith(STATE_BUCKET):
                bucket = self.buckets.get(int(key.removeprefix(STATE_BUCKET)))
                out[key] = bucket.model_dump_json().encode() if bucket else None
            elif key.startswith(STATE_EPISODE):
                episode = self.episodes.get(key.removeprefix(STATE_EPISODE).decode())
                out[key] = episode.model_dump_json().encode() if episode else None
            elif key == STATE_META:
                out[key] = self.meta.model_dump_json().encode()
        self.dirty.clear()
        self.deleted.clear()
        return out

    def _touch_episode(self, key: str) -> None:
        self.dirty.add(STATE_EPISODE + key.encode())

    # -- time --------------------------------------------------------------------------------------------

    def bucket_of(self, at: datetime) -> int:
        return math.floor(at.timestamp() / self.config.bucket)

    def bucket_start(self, index: int) -> datetime:
        return datetime.fromtimestamp(index * self.config.bucket, UTC)

    def _advance(self, created_at: datetime, now: datetime) -> list[Alert]:
        """Move the stream clock (never past the wall clock); resolve what ended; forget old buckets."""
        at = min(created_at, now)
        before = self.meta.clock
        if before is not None and at <= before:
            return []
        self.meta.clock = at
        self.dirty.add(STATE_META)
        current = self.bucket_of(at)
        if before is not None and self.bucket_of(before) == current:
            return self._resolve_emergencies(now)
        keep_from = current - self.config.period * self.config.baseline_days - 1
        for index in [i for i in self.buckets if i < keep_from]:
            for post_key in self.buckets.pop(index).keys:
                self.seen.pop(post_key, None)
            self.deleted.add(STATE_BUCKET + str(index).encode())
        resolved = []
        for key, episode in list(self.episodes.items()):
            counted = episode.alert.kind in (AlertKind.SPIKE, AlertKind.NEGATIVE_SURGE)
            if counted and current - episode.last_bucket > self.config.resolve_after:
                resolved.append(self._resolve(key, now))
        return resolved + self._resolve_emergencies(now)

    # -- input ---------------------------------------------------------------------------------------

    def add(self, records: list[Record], now: datetime | None = None) -> DetectOutcome:
        now = now or datetime.now(UTC)
        outcome = DetectOutcome()
        for record in records:
            try:
                item = AlertInput.model_validate_json(record.value or b"")
            except ValidationError as exc:
                outcome.failed.append(Failed(record, "alerts", describe_validation_error(exc)))
                continue
            if item.post is not None:
                outcome.alerts += self._add_post(item.post, now)
            elif item.topic is not None:
                outcome.alerts += self._topic(item.topic, now)
            elif item.topic_ended is not None:
                self.topics.pop(item.topic_ended, None)
                key = f"emerging_topic:topic={item.topic_ended}"
                if key in self.episodes:
                    outcome.alerts.append(self._resolve(key, now))
        return outcome

    def _add_post(self, post: PostSeen, now: datetime) -> list[Alert]:
        self.meta.arrivals[post.platform] = now
        self.dirty.add(STATE_META)
        alerts: list[Alert] = []
        first = self.bucket_of(post.created_at)
        if self.meta.first_bucket is None or first < self.meta.first_bucket:
            self.meta.first_bucket = first
            self._periods.clear()  # every baseline starts there
        alerts += self._advance(post.created_at, now)
        silence = self._resolve_silence(post.platform, now)
        alerts += silence
        if post.key in self.seen:
            return alerts
        index = self.bucket_of(post.created_at)
        clock_bucket = self.bucket_of(self.meta.clock or post.created_at)
        if index < clock_bucket - self.config.period * self.config.baseline_days:
            return alerts  # older than every baseline: nothing to compare with or against
        bucket = self.buckets.setdefault(index, Bucket(start=self.bucket_start(index)))
        bucket.keys.append(post.key)
        self.seen[post.key] = index
        self.dirty.add(STATE_BUCKET + str(index).encode())
        example = AlertExample(key=post.key, text=post.text, url=post.url)
        if self._periods:  # a late post is in later buckets' periods; the windows need only the last few
            low = index - 2 * max(SPIKE_WINDOWS)
            self._periods = {i: totals for i, totals in self._periods.items() if low < i <= index}
        for series in series_of(post):
            bucket.counts[series] = bucket.counts.get(series, 0) + 1
            if post.negative:
                bucket.negative[series] = bucket.negative.get(series, 0) + 1
            shown = bucket.examples.setdefault(series, [])
            if len(shown) < 3:
                shown.append(example)
            alerts += self._judge_spike(series, index, now)
            alerts += self._judge_negative(series, index, now)
        if post.urgent and post.region is not None:
            alerts += self._emergency(post, example, now)
        return alerts

    # -- spike -------------------------------------------------------------------------------------------

    def baseline(self, series: str, index: int) -> tuple[list[int], list[int]] | None:
        """Counts and negative counts of the baseline buckets, or None with too little history."""
        first = self.meta.first_bucket
        if first is None:
            return None
        c = self.config
        buckets = baseline_buckets(index, c.period, c.baseline_days, c.baseline_min_days, first)
        if buckets is None:
            return None
        counts = [self.buckets[i].counts.get(series, 0) if i in self.buckets else 0 for i in buckets]
        negatives = [self.buckets[i].negative.get(series, 0) if i in self.buckets else 0 for i in buckets]
        return counts, negatives

    def is_weekend(self, index: int) -> bool:
        return weekend_bucket(index, self.config.bucket)

    def period_totals(self, index: int) -> PeriodTotals:
        """Every key's posts in the baseline period before bucket ``index``, in one pass."""
        if (known := self._periods.get(index)) is not None:
            return known
        c = self.config
        first = self.meta.first_bucket if self.meta.first_bucket is not None else index
        low = max(index - c.period * c.baseline_days, first)
        totals = PeriodTotals(low=low, since=max(index - c.period * c.level_days, low))
        for i in range(low, index):
            weekend = self.is_weekend(i)
            totals.buckets[weekend] += 1
            held = self.buckets.get(i)
            if held is None:
                continue
            kind = totals.posts[weekend]
            for series, n in held.counts.items():
                kind[series] = kind.get(series, 0) + n
                if i >= totals.since:
                    totals.recent[series] = totals.recent.get(series, 0) + n
        self._periods[index] = totals
        return totals

    def weekend_ratio(self, series: str, index: int) -> float:
        """The key's weekend-to-weekday ratio over the baseline period before bucket ``index``."""
        t = self.period_totals(index)
        return weekend_ratio(
            t.posts[True].get(series, 0), t.buckets[True], t.posts[False].get(series, 0), t.buckets[False]
        )

    def expected(self, series: str, index: int) -> float | None:
        """Bucket ``index``'s baseline (``expected_count`` over the baseline days, moved to the recent
        level by ``level_factor`` once there is twice the level window of history), or None with too
        little history."""
        first = self.meta.first_bucket
        if first is None:
            return None
        if (period := self._periods.get(index)) is not None and series in period.expected:
            return period.expected[series]
        c = self.config
        indices = baseline_buckets(index, c.period, c.baseline_days, c.baseline_min_days, first)
        if indices is None:
            return None
        t = self.period_totals(index)
        values = [float(self.buckets[i].counts.get(series, 0)) if i in self.buckets else 0.0 for i in indices]
        weekend = [self.is_weekend(i) for i in indices]
        value = expected_count(values, weekend, self.is_weekend(index), self.weekend_ratio(series, index))
        if c.level_days and index - first >= 2 * c.period * c.level_days:
            posts = t.posts[True].get(series, 0) + t.posts[False].get(series, 0)
            value *= level_factor(t.recent.get(series, 0), index - t.since, posts, index - t.low)
        t.expected[series] = value
        return value

    def tests_per_bucket(self, index: int) -> int:
        """Series judged per bucket (the multiple-testing correction): those seen in the baseline period."""
        t = self.period_totals(index)
        names = t.posts[True].keys() | t.posts[False].keys()
        held = self.buckets.get(index)
        if held is not None:
            names |= held.counts.keys()
        return max(1, len(names))

    def spike_decision(self, counts: list[int], expected: list[float], tests: int) -> Severity | None:
        """The spike test on its own (the bench drives it directly). ``counts`` and ``expected`` are the
        buckets up to this one (this one last). A window of the last 1, 2, 3 or 6 buckets fires when its
        total passes the minimum count, the minimum ratio over its baseline and the count-model test:
        the one-bucket window finds a sharp burst at once, the longer ones a burst of a few posts an
        hour that no single hour shows. The correction divides ``alpha`` by the windows times the keys."""
        c = self.config
        level = c.alpha / (len(SPIKE_WINDOWS) * tests)
        for width in SPIKE_WINDOWS:
            if width > len(counts) or (width > 1 and counts[-1] < max(1.0, STILL_RAISED * expected[-1])):
                continue  # a window whose last bucket is back to normal: the burst is over
            total = sum(counts[-width:])
            base = max(sum(expected[-width:]), 0.1)
            if total < c.min_count or total < c.min_ratio * base:
                continue
            if nb_upper_tail(total, base, width * c.dispersion) >= level:
                continue
            strong = width == 1 and total >= 2 * c.min_ratio * base and total >= 2 * c.min_count
            return Severity.CRITICAL if strong else Severity.WARNING
        return None

    def _judge_spike(self, series: str, index: int, now: datetime) -> list[Alert]:
        expected = self.expected(series, index)
        if expected is None:
            return []
        bucket = self.buckets[index]
        count = bucket.counts.get(series, 0)
        counts, expecteds = [count], [expected]
        for back in range(1, max(SPIKE_WINDOWS)):
            earlier = self.expected(series, index - back)
            if earlier is None:
                break
            held = self.buckets.get(index - back)
            counts.insert(0, held.counts.get(series, 0) if held else 0)
            expecteds.insert(0, earlier)
        severity = self.spike_decision(counts, expecteds, self.tests_per_bucket(index))
        if severity is None:
            return []
        start = self.bucket_start(index)
        ratio = count / max(expected, 0.1)
        summary = (
            f"Lonjakan unggahan tentang {subject_of(series)}: {count} unggahan pada "
            f"{_clock(start)}–{_clock(start + timedelta(seconds=self.config.bucket))} WIB, "
            f"biasanya sekitar {expected:.1f} ({ratio:.1f}×)."
        )
        return self._fire(AlertKind.SPIKE, series, index, severity, count, expected, summary, now)

    def _judge_negative(self, series: str, index: int, now: datetime) -> list[Alert]:
        base = self.baseline(series, index)
        if base is None:
            return []
        bucket = self.buckets[index]
        count, negative = bucket.counts.get(series, 0), bucket.negative.get(series, 0)
        if negative < self.config.negative_min:
            return []
        total, negatives = sum(base[0]), sum(base[1])
        share0 = (negatives + 1) / (total + 3)  # smoothed: a key without history starts near a third
        share = negative / count
        if share < share0 + self.config.negative_rise:
            return []
        if binomial_upper_tail(negative, count, share0) >= self.config.alpha / self.tests_per_bucket(index):
            return []
        summary = (
            f"Sentimen negatif meningkat untuk {subject_of(series)}: {negative} dari {count} unggahan "
            f"negatif ({share:.0%}), biasanya {share0:.0%}."
        )
        return self._fire(
            AlertKind.NEGATIVE_SURGE, series, index, Severity.WARNING, negative, share0 * count, summary, now
        )

    def _fire(
        self,
        kind: AlertKind,
        series: str,
        index: int,
        severity: Severity,
        count: int,
        expected: float,
        summary: str,
        now: datetime,
    ) -> list[Alert]:
        key = f"{kind.value}:{series}"
        parts = _parse_series(series)
        start = self.bucket_start(index)
        end = start + timedelta(seconds=self.config.bucket)
        examples = self.buckets[index].examples.get(series, [])
        episode = self.episodes.get(key)
        if episode is None:
            alert = Alert(
                id=alert_id(key, start),
                key=key,
                kind=kind,
                severity=severity,
                agencies=[Agency(parts["agency"])] if "agency" in parts else [],
                region=Region(parts["region"]) if "region" in parts else None,
                category=Category(parts["category"]) if "category" in parts else None,
                window_start=start,
                window_end=end,
                count=count,
                expected=round(expected, 3),
                summary=summary,
                examples=examples,
                kibana_url=self.discover_url(start, end, parts),
                raised_at=now,
            )
            self.episodes[key] = Episode(alert=alert, last_bucket=index)
            self._touch_episode(key)
            return [alert]
        old = episode.alert
        escalated = severity.rank > old.severity.rank
        moved = index > episode.last_bucket
        if not escalated and not moved:
            return []
        alert = old.model_copy(
            update={
                "revision": old.revision + (1 if escalated else 0),
                "severity": max(severity, old.severity, key=lambda s: s.rank),
                "window_end": max(end, old.window_end),
                "count": max(count, old.count) if not moved else count,
                "expected": round(expected, 3),
                "summary": summary,
                "examples": examples or old.examples,
                "raised_at": now,
            }
        )
        self.episodes[key] = Episode(alert=alert, last_bucket=max(index, episode.last_bucket))
        self._touch_episode(key)
        return [alert]

    def _resolve(self, key: str, now: datetime) -> Alert:
        episode = self.episodes.pop(key)
        self.deleted.add(STATE_EPISODE + key.encode())
        self.dirty.discard(STATE_EPISODE + key.encode())
        old = episode.alert
        return old.model_copy(
            update={
                "revision": old.revision + 1,
                "status": AlertStatus.RESOLVED,
                "summary": "Selesai: " + old.summary,
                "raised_at": now,
            }
        )

    # -- emergency ---------------------------------------------------------------------------------------

    def _emergency(self, post: PostSeen, example: AlertExample, now: datetime) -> list[Alert]:
        """Urgent posts in one region: ``emergency_min_posts`` of them within ``emergency_window``
        (stream time, in whatever order they arrive) start an emergency; later posts of the same
        cluster extend it quietly, and a post that was behind one never starts another."""
        assert post.region is not None
        region = post.region.value
        window = timedelta(seconds=self.config.emergency_window)
        arrived = EmergencyPost(key=post.key, created_at=post.created_at, example=example)
        posts = sorted([*self.meta.emergencies.get(region, []), arrived], key=lambda p: p.created_at)
        self.meta.emergencies[region] = posts
        key = f"emergency:region={region}"
        episode = self.episodes.get(key)
        if episode is None:
            cluster = _cluster(posts, arrived, window, self.config.emergency_min_posts)
            if cluster is None:
                return []
            for member in cluster:
                member.alerted = True
            start, end = cluster[0].created_at, cluster[-1].created_at
            count = len(cluster)
            name = REGION_NAMES.get(post.region, region)
            alert = Alert(
                id=alert_id(key, start),
                key=key,
                kind=AlertKind.EMERGENCY,
                severity=Severity.CRITICAL,
                region=post.region,
                category=Category.BENCANA,
                window_start=start,
                window_end=end,
                count=count,
                expected=0,
                summary=f"Laporan darurat bencana di {name}: {count} unggahan sejak {_clock(start)} WIB.",
                examples=[p.example for p in cluster if p.example is not None][:3],
                kibana_url=self.discover_url(start, end, {"region": region, "category": "bencana"}),
                raised_at=now,
            )
            self.episodes[key] = Episode(alert=alert, last_bucket=self.bucket_of(end), last_seen=end)
            self._touch_episode(key)
            return [alert]
        if post.created_at < episode.alert.window_start - window:
            return []  # a late post of an older cluster: the open emergency is about something else
        arrived.alerted = True
        name = REGION_NAMES.get(post.region, region)
        # an open emergency takes the post quietly (the count grows; subscribers were told already)
        old = episode.alert
        count = old.count + 1
        alert = old.model_copy(
            update={
                "window_end": max(old.window_end, post.created_at),
                "count": count,
                "summary": f"Laporan darurat bencana di {name}: {count} unggahan sejak "
                f"{_clock(old.window_start)} WIB.",
            }
        )
        last = max(episode.last_seen or post.created_at, post.created_at)
        self.episodes[key] = Episode(alert=alert, last_bucket=episode.last_bucket, last_seen=last)
        self._touch_episode(key)
        return []

    def _resolve_emergencies(self, now: datetime) -> list[Alert]:
        clock = self.meta.clock
        if clock is None:
            return []
        window = timedelta(seconds=self.config.emergency_window)
        out = []
        for key, episode in list(self.episodes.items()):
            if (
                episode.alert.kind == AlertKind.EMERGENCY
                and episode.last_seen
                and clock - episode.last_seen > window
            ):
                out.append(self._resolve(key, now))
        for region, posts in list(self.meta.emergencies.items()):
            recent = [p for p in posts if p.created_at >= clock - window]
            older = [p.model_copy(update={"example": None}) for p in posts if p.created_at < clock - window]
            kept = older[-EMERGENCY_KEPT:] + recent
            if kept:
                self.meta.emergencies[region] = kept
            else:
                del self.meta.emergencies[region]
        return out

    # -- topics ------------------------------------------------------------------------------------------

    def _topic(self, topic: EmergingTopic, now: datetime) -> list[Alert]:
        self.topics[topic.id] = topic
        key = f"emerging_topic:topic={topic.id}"
        hot = (
            topic.growth >= self.config.topic_growth and topic.posts_last_hour >= self.config.topic_min_posts
        )
        episode = self.episodes.get(key)
        if episode is None and not hot:
            return []
        if episode is not None:
            if topic.posts_last_hour < self.config.topic_min_posts:
                return [self._resolve(key, now)]
            return []
        start = topic.updated_at - timedelta(hours=1)
        region = topic.top_regions[0].region if topic.top_regions else None
        alert = Alert(
            id=alert_id(key, topic.first_seen),
            key=key,
            kind=AlertKind.EMERGING_TOPIC,
            severity=Severity.WARNING,
            agencies=[a.agency for a in topic.top_agencies[:3]],
            region=region,
            topic=TopicRef(id=topic.id, label=topic.label),
            window_start=start,
            window_end=topic.updated_at,
            count=topic.posts_last_hour,
            expected=float(topic.posts_prev_hour),
            summary=(
                f'Topik baru berkembang: "{topic.label}" ({topic.posts_last_hour} unggahan dalam satu jam '
                f"terakhir, {topic.growth:.1f}× jam sebelumnya)."
            ),
            examples=[
                AlertExample(key=p.key, text=p.text[:EXAMPLE_CHARS]) for p in topic.representative_posts
            ],
            kibana_url=self.discover_url(start, topic.updated_at, {"topic": topic.id}),
            raised_at=now,
        )
        self.episodes[key] = Episode(alert=alert, last_bucket=self.bucket_of(topic.updated_at))
        self._touch_episode(key)
        return [alert]

    # -- silence (wall time) -----------------------------------------------------------------------------

    def check_silence(self, now: datetime) -> list[Alert]:
        """Called by a timer: the stream, or one platform that delivered before, quiet for too long."""
        after = timedelta(seconds=self.config.silence_after)
        out: list[Alert] = []
        arrivals = self.meta.arrivals
        if not arrivals:
            return out
        latest = max(arrivals.values())
        subjects: dict[str, tuple[str, datetime]] = {"silence:stream": ("semua platform", latest)}
        for platform, at in arrivals.items():
            subjects[f"silence:platform={platform}"] = (platform, at)
        for key, (what, last) in subjects.items():
            if now - last < after or key in self.episodes:
                continue
            if key != "silence:stream" and now - latest >= after:
                continue  # the whole stream is quiet: one alert, not one per platform
            hours = (now - last).total_seconds() / 3600
            alert = Alert(
                id=alert_id(key, last),
                key=key,
                kind=AlertKind.SILENCE,
                severity=Severity.WARNING,
                window_start=last,
                window_end=now,
                count=0,
                expected=0,
                summary=f"Tidak ada unggahan masuk dari {what} selama {hours:.1f} jam.",
                raised_at=now,
            )
            self.episodes[key] = Episode(alert=alert, last_bucket=0)
            self._touch_episode(key)
            out.append(alert)
        return out

    def _resolve_silence(self, platform: str, now: datetime) -> list[Alert]:
        out = []
        for key in ("silence:stream", f"silence:platform={platform}"):
            if key in self.episodes:
                out.append(self._resolve(key, now))
        return out

    # -- links -------------------------------------------------------------------------------------------

    def discover_url(self, start: datetime, end: datetime, parts: dict[str, str]) -> str | None:
        """A Kibana Discover link on the posts data view, for the window and the subject."""
        if not self.kibana_url:
            return None
        fields = {"agency": "agencies", "region": "region", "category": "category", "topic": "topic.id"}
        query = " and ".join(f'{fields[k]} : "{v}"' for k, v in parts.items() if k in fields)
        return discover_link(self.kibana_url, self.posts_view, start, end, query)


def discover_link(kibana_url: str, data_view: str, start: datetime, end: datetime, query: str) -> str:
    """A Kibana Discover link: ``data_view`` (ids equal titles), the time range, a KQL query."""
    state = (
        f"_g=(time:(from:'{start.isoformat()}',to:'{end.isoformat()}'))"
        f"&_a=(dataSource:(dataViewId:'{data_view}',type:dataView),"
        f"query:(language:kuery,query:'{query}'))"
    )
    return f"{kibana_url.rstrip('/')}/app/discover#/?" + urllib.parse.quote(state, safe="=&:/(),'")


def _clock(at: datetime) -> str:
    return at.astimezone(JAKARTA).strftime("%H:%M")


def dump_alert(alert: Alert) -> bytes:
    return json.dumps(alert.model_dump(mode="json"), ensure_ascii=False).encode()


def _cluster(
    posts: list[EmergencyPost], arrived: EmergencyPost, window: timedelta, least: int
) -> list[EmergencyPost] | None:
    """The first ``window`` of posts (sorted by time) holding ``arrived`` and at least ``least`` posts
    behind no emergency yet, or None."""
    free = [p for p in posts if not p.alerted]
    for first in free:
        if first.created_at > arrived.created_at:
            break
        members = [p for p in free if first.created_at <= p.created_at <= first.created_at + window]
        if any(m is arrived for m in members) and len(members) >= least:
            return members
    return None
