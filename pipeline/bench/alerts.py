"""``pantau bench alerts``: spike detection on a synthetic year of hourly counts per agency.

The generator's parameters (``GeneratorParams``) were fixed, and written in the README, before the
detector's defaults were looked at with it. Tuning may use ``TUNING_SEEDS`` only; the scores reported
are on ``HELD_OUT_SEEDS``. The bench drives the detector's own decision (``AlertDetector.spike_decision``)
and its own baseline (``expected_count`` of the same hour on past days, moved to the hour's kind of day
by the period's ``weekend_ratio`` and to the recent days by ``level_factor``), one bucket at a time, as
the agent does when a bucket's count grows.
Hour 0 of a stream is Monday 00:00 WIB (``ORIGIN``), as the generator's daily and weekly cycles assume.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from pipeline.alerts.counting import expected_count, level_factor, weekend_ratio
from pipeline.alerts.detect import (
    JAKARTA,
    SPIKE_WINDOWS,
    AlertDetector,
    DetectorConfig,
    baseline_buckets,
    weekend_bucket,
)

TUNING_SEEDS = (0, 1, 2)
HELD_OUT_SEEDS = (100, 101, 102, 103, 104)
ORIGIN = datetime(2024, 1, 1, tzinfo=JAKARTA)
"""Hour 0 of every stream: a Monday, 00:00 WIB."""


@dataclass(frozen=True)
class GeneratorParams:
    hours: int = 365 * 24
    agencies: int = 18
    base_rates: tuple[float, ...] = (0.3, 0.8, 1.5, 3.0, 6.0)
    """Mean posts per hour at the daily peak, one drawn per agency."""
    night_floor: float = 0.15
    """Share of the peak rate at night (00–06 WIB); the day rises and falls as a half sine 06–22."""
    weekend_factor: float = 0.7
    dispersion: float = 5.0
    """Negative-binomial size of the hourly counts (variance = mean + mean²/5)."""
    bursts_per_agency: int = 16
    """Planted bursts per agency per year, at random hours, at least two weeks apart."""
    burst_multipliers: tuple[float, ...] = (2.0, 3.0, 5.0, 8.0)
    burst_hours: tuple[int, ...] = (1, 2, 3, 6)
    burst_min_extra: float = 2.0
    """A burst adds at least this many posts an hour on average (a 3× burst at night is still visible)."""


@dataclass
class Burst:
    start: int
    hours: int
    multiplier: float
    posts: int = 0
    detected_at: int | None = None

    @property
    def target(self) -> bool:
        """The class the targets are stated for: ≥ 3× the baseline, ≥ 2 h, ≥ 10 posts."""
        return self.multiplier >= 3 and self.hours >= 2 and self.posts >= 10


@dataclass
class Stream:
    counts: np.ndarray
    bursts: list[Burst] = field(default_factory=list)
    rate: np.ndarray | None = None
    """The generator's true mean posts per hour without bursts: the baseline no estimate can beat."""


def rate_profile(params: GeneratorParams, peak: float) -> np.ndarray:
    hour_of_day = np.arange(params.hours) % 24
    day = np.where(
        (hour_of_day >= 6) & (hour_of_day < 22),
        params.night_floor + (1 - params.night_floor) * np.sin(np.pi * (hour_of_day - 6) / 16),
        params.night_floor,
    )
    weekday = (np.arange(params.hours) // 24) % 7
    week = np.where(weekday >= 5, params.weekend_factor, 1.0)
    return np.asarray(peak * day * week)


def generate(params: GeneratorParams, seed: int, with_bursts: bool) -> list[Stream]:
    rng = np.random.default_rng(seed)
    streams = []
    for _ in range(params.agencies):
        rate = rate_profile(params, float(rng.choice(params.base_rates)))
        extra = np.zeros(params.hours)
        bursts: list[Burst] = []
        if with_bursts:
            starts: list[int] = []
            for _ in range(10_000):  # random placement; a short year simply holds fewer bursts
                if len(starts) == params.bursts_per_agency:
                    break
                s = int(rng.integers(14 * 24, params.hours - 12))
                if all(abs(s - o) > 14 * 24 for o in starts):
                    starts.append(s)
            for s in sorted(starts):
                burst = Burst(
                    s, int(rng.choice(params.burst_hours)), float(rng.choice(params.burst_multipliers))
                )
                span = slice(s, s + burst.hours)
                extra[span] = np.maximum(rate[span] * (burst.multiplier - 1), params.burst_min_extra)
                bursts.append(burst)
        mean = rate + extra
        size = params.dispersion
        counts = rng.poisson(rng.gamma(size, mean / size))  # gamma–Poisson = negative binomial
        for burst in bursts:
            burst.posts = round(float(extra[burst.start : burst.start + burst.hours].sum()))
        streams.append(Stream(counts=counts, bursts=bursts, rate=rate))
    return streams


@dataclass
class Scores:
    target_bursts: int
    recall: float
    false_per_agency_week: float
    median_delay: float | None
    recall_by_multiplier: dict[float, float]


def detect(stream: Stream, detector: AlertDetector, tests: int, oracle: bool = False) -> list[int]:
    """Hours at which a spike episode starts (the first firing bucket after a quiet one). ``oracle``: the
    decision reads the generator's true hourly rate instead of the detector's baseline, which bounds what
    any baseline estimate could reach with this decision."""
    config = detector.config
    counts = stream.counts
    if oracle and stream.rate is not None:
        return _episodes(counts, [float(v) for v in stream.rate], detector, tests)
    origin = math.floor(ORIGIN.timestamp() / config.bucket)
    weekend = [weekend_bucket(origin + hour, config.bucket) for hour in range(len(counts))]
    posts = {True: [0], False: [0]}  # running totals of the weekend and weekday hours
    for hour, count in enumerate(counts):
        for kind, total in posts.items():
            total.append(total[-1] + (int(count) if weekend[hour] == kind else 0))
    kinds = [0]
    for hour in range(len(counts)):
        kinds.append(kinds[-1] + weekend[hour])
    expected = [0.0] * len(counts)
    week = config.period * config.baseline_days
    for hour in range(len(counts)):
        low = max(hour - week, 0)
        weekend_hours = kinds[hour] - kinds[low]
        ratio = weekend_ratio(
            posts[True][hour] - posts[True][low],
            weekend_hours,
            posts[False][hour] - posts[False][low],
            hour - low - weekend_hours,
        )
        buckets = baseline_buckets(hour, config.period, config.baseline_days, 1, 0) or []
        expected[hour] = expected_count(
            [float(counts[i]) for i in buckets], [weekend[i] for i in buckets], weekend[hour], ratio
        )
        recent = config.period * config.level_days
        if config.level_days and hour >= 2 * recent:
            posted = posts[True][hour] + posts[False][hour]
            since = max(hour - recent, 0)
            expected[hour] *= level_factor(
                posted - posts[True][since] - posts[False][since],
                hour - since,
                posted - posts[True][low] - posts[False][low],
                hour - low,
            )
    return _episodes(counts, expected, detector, tests)


def _episodes(counts: np.ndarray, expected: list[float], detector: AlertDetector, tests: int) -> list[int]:
    config = detector.config
    starts: list[int] = []
    open_until = -10
    widest = max(SPIKE_WINDOWS)
    for hour in range(config.baseline_min_days * 24, len(counts)):
        span = slice(hour - widest + 1, hour + 1)
        window = [int(v) for v in counts[span]]
        fired = detector.spike_decision(window, expected[span], tests) is not None
        if fired:
            if hour > open_until + config.resolve_after:
                starts.append(hour)
            open_until = hour
    return starts


def score(
    seeds: tuple[int, ...],
    config: DetectorConfig,
    params: GeneratorParams | None = None,
    oracle: bool = False,
) -> Scores:
    params = params or GeneratorParams()
    detector = AlertDetector(config)
    tests = params.agencies
    found, delays, total = 0, [], 0
    by_mult: dict[float, list[int]] = {}
    false_alerts, agency_weeks = 0, 0.0
    for seed in seeds:
        for stream in generate(params, seed, with_bursts=True):
            starts = detect(stream, detector, tests, oracle)
            for burst in stream.bursts:
                hit = next((s for s in starts if burst.start <= s < burst.start + burst.hours), None)
                by_mult.setdefault(burst.multiplier, []).append(int(hit is not None))
                if burst.target:
                    total += 1
                    if hit is not None:
                        found += 1
                        delays.append(hit - burst.start)
        for stream in generate(params, seed + 10_000, with_bursts=False):
            false_alerts += len(detect(stream, detector, tests, oracle))
            agency_weeks += (params.hours - config.baseline_min_days * 24) / (24 * 7)
    return Scores(
        target_bursts=total,
        recall=found / total if total else math.nan,
        false_per_agency_week=false_alerts / agency_weeks,
        median_delay=statistics.median(delays) if delays else None,
        recall_by_multiplier={m: sum(v) / len(v) for m, v in sorted(by_mult.items())},
    )
