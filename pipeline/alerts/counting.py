"""Count-model tails for spike detection: small hourly counts (0–20) need a count model, not a z-score.

The negative binomial (mean ``mu``, size ``r``; variance ``mu + mu²/r``) allows the overdispersion real
streams have (a news item doubles an hour's posts without being an event); ``r`` → ∞ is the Poisson.
"""

from __future__ import annotations

import math
import statistics


def nb_upper_tail(count: int, mu: float, size: float) -> float:
    """P(X ≥ count) for X ~ NB(mean ``mu``, size ``size``)."""
    if count <= 0:
        return 1.0
    mu = max(mu, 1e-9)
    p = size / (size + mu)  # success probability in the (r, p) parameterisation
    log_p, log_q = math.log(p), math.log1p(-p)
    below = 0.0
    for k in range(count):
        below += math.exp(
            math.lgamma(k + size) - math.lgamma(size) - math.lgamma(k + 1) + size * log_p + k * log_q
        )
    return max(0.0, 1.0 - below)


def binomial_upper_tail(successes: int, trials: int, p: float) -> float:
    """P(X ≥ successes) for X ~ Binomial(trials, p)."""
    p = min(max(p, 1e-9), 1 - 1e-9)
    total = 0.0
    for k in range(successes, trials + 1):
        total += math.exp(
            math.lgamma(trials + 1)
            - math.lgamma(k + 1)
            - math.lgamma(trials - k + 1)
            + k * math.log(p)
            + (trials - k) * math.log1p(-p)
        )
    return min(1.0, total)


def robust_mean(values: list[float]) -> float:
    """Mean with each value capped at ``max(2 × median, median + 3)``: a past burst in the baseline week is
    down-weighted (as epitweetr does) so it cannot hide the next one, while ordinary hours keep their
    full weight (leaving the largest value out instead biases small counts low, which raises false
    alerts)."""
    if not values:
        return 0.0
    median = statistics.median(values)
    cap = max(2 * median, median + 3)
    return sum(min(v, cap) for v in values) / len(values)


WEEKEND_PRIOR = 5.0
"""Pseudo-posts that pull a key's weekend ratio towards 1: a quiet key's week says little about it."""


def weekend_ratio(
    weekend_posts: float, weekend_buckets: int, weekday_posts: float, weekday_buckets: int
) -> float:
    """Posts per weekend bucket over posts per weekday bucket in the past week, shrunk towards 1 by
    ``WEEKEND_PRIOR``; 1 while the week lacks either kind of day."""
    if weekend_buckets == 0 or weekday_buckets == 0:
        return 1.0
    weekday_rate = weekday_posts * weekend_buckets / weekday_buckets
    return (weekend_posts + WEEKEND_PRIOR) / (weekday_rate + WEEKEND_PRIOR)


LEVEL_PRIOR = 5.0
"""Pseudo-posts that pull a key's level factor towards 1: a quiet key's week says little about it."""


def level_factor(recent_posts: float, recent_buckets: int, all_posts: float, all_buckets: int) -> float:
    """How busy the key's recent days are against the whole baseline period (posts per bucket, shrunk
    towards 1 by ``LEVEL_PRIOR``): the long baseline gives the shape of a day with little noise, this
    factor moves it to the recent level, so a key whose traffic really changed stops looking spiky after
    the recent window instead of after the whole period."""
    if recent_buckets <= 0 or all_buckets <= recent_buckets:
        return 1.0
    expected_recent = all_posts * recent_buckets / all_buckets
    return (recent_posts + LEVEL_PRIOR) / (expected_recent + LEVEL_PRIOR)


def expected_count(values: list[float], weekend: list[bool], now_weekend: bool, ratio: float) -> float:
    """A bucket's baseline: the past days' values, each moved to the bucket's kind of day (a weekday
    value times ``ratio`` for a weekend bucket, a weekend value divided by it for a weekday one), then
    their capped mean. A week holds five weekdays and two weekend days, so a plain mean expects too
    much on a quiet Sunday (a burst hides) and too little on a busy Monday (a false spike)."""
    moved = [
        v if w == now_weekend else (v * ratio if now_weekend else v / ratio)
        for v, w in zip(values, weekend, strict=True)
    ]
    return robust_mean(moved)
