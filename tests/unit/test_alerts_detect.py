"""Alert detection driven with plain records: spikes, distinct keys, official accounts, emergencies,
topics, silence, resolved notices and state that survives a restart."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from pipeline.alerts.counting import nb_upper_tail, robust_mean
from pipeline.alerts.detect import AlertDetector, AlertInput, AlertObserver, DetectorConfig, PostSeen
from pipeline.stages.records import Failed, Outgoing, Record
from schemas.alerts import Alert, AlertKind, AlertStatus, Severity
from schemas.posts import Author, EnrichedPost, Sentiment, SentimentLabel
from schemas.topics import EmergingTopic
from schemas.vocab import Agency, Category, Platform, Region

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
_ids = itertools.count()


def _post(at: datetime, agency: str = "pdam", region: str | None = "3673", **kw: object) -> Record:
    seen = PostSeen(
        key=str(kw.pop("key", f"x:{next(_ids)}")),
        created_at=at,
        platform="x",
        agencies=[Agency(agency)] if agency else [],
        region=Region(region) if region else None,
        category=Category(str(kw.pop("category", "air_bersih"))),
        negative=bool(kw.pop("negative", False)),
        urgent=bool(kw.pop("urgent", False)),
        text=str(kw.pop("text", "air mati lagi")),
    )
    return Record(
        "pantau.alerts.input", 0, 0, seen.key.encode(), AlertInput(post=seen).model_dump_json().encode()
    )


def _history(detector: AlertDetector, days: int = 7, per_hour: int = 2, agency: str = "pdam") -> None:
    for hour in range(days * 24):
        at = T0 + timedelta(hours=hour, minutes=5)
        detector.add([_post(at + timedelta(minutes=i), agency) for i in range(per_hour)], NOW)


def _detector(**kw: object) -> AlertDetector:
    return AlertDetector(DetectorConfig(**kw), kibana_url="http://kibana:5601")  # type: ignore[arg-type]


def _spikes(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.kind == AlertKind.SPIKE]


def test_count_tails_and_robust_mean() -> None:
    assert nb_upper_tail(0, 2.0, 4.0) == 1.0
    assert 0 < nb_upper_tail(12, 2.0, 4.0) < nb_upper_tail(6, 2.0, 4.0) < 0.1
    assert nb_upper_tail(6, 2.0, 1000.0) < nb_upper_tail(6, 2.0, 2.0)  # overdispersion widens the tail
    assert robust_mean([1, 1, 1, 20]) == 1.75 and robust_mean([2, 4]) == 3.0  # 20 capped at 4


def test_the_baseline_follows_the_week() -> None:
    """Weekdays at 4 posts an hour, weekends at 2: a Saturday hour expects about 2, a Monday hour about
    4 (a plain mean of the week's same hours would expect about 3.4 of both)."""
    monday = datetime(2026, 11, 1, 17, tzinfo=UTC)  # 00:00 WIB on Monday 2 November
    series = "agency=pdam,region=3673"

    def expected_at(day: int) -> tuple[float | None, float]:
        detector = _detector()
        until = day * 24 + 10
        for hour in range(until):  # history up to 10:00 WIB of that day
            at = monday + timedelta(hours=hour, minutes=5)
            weekend = (hour // 24) % 7 >= 5
            detector.add([_post(at + timedelta(minutes=i)) for i in range(2 if weekend else 4)], NOW)
        index = detector.bucket_of(monday + timedelta(hours=until))
        assert detector.is_weekend(index) == (day % 7 >= 5)
        return detector.expected(series, index), detector.weekend_ratio(series, index)

    saturday, ratio = expected_at(12)
    assert saturday is not None and 1.8 < saturday < 2.4 and 0.45 < ratio < 0.6
    monday_next, _ = expected_at(14)
    assert monday_next is not None and 3.6 < monday_next < 4.3


def test_a_planted_spike_fires_once_with_a_stable_id_and_resolves_after_it_ends() -> None:
    detector = _detector()
    _history(detector, per_hour=1)
    spike_hour = T0 + timedelta(days=7, hours=3)
    alerts: list[Alert] = []
    for i in range(14):
        alerts += detector.add([_post(spike_hour + timedelta(minutes=i))], NOW).alerts
    spikes = [a for a in _spikes(alerts) if a.key == "spike:agency=pdam,region=3673"]
    assert spikes, alerts
    first = spikes[0]
    assert first.status == AlertStatus.FIRING and first.severity == Severity.WARNING
    assert 0.9 < first.expected <= 1.0  # a Sunday hour: the quiet end of the history counts a little
    assert first.window_start == spike_hour.replace(minute=0) and first.agencies == [Agency.PDAM]
    assert first.region == Region.KOTA_SERANG and "Lonjakan" in first.summary
    assert first.kibana_url and "agencies" in first.kibana_url
    assert len(first.examples) == 3
    assert len({a.id for a in spikes}) == 1
    assert any(a.severity == Severity.CRITICAL and a.revision == 2 for a in spikes)  # escalated
    # two quiet hours later the condition has ended: one resolved notice, a new revision
    later = detector.add([_post(spike_hour + timedelta(hours=2, minutes=30))], NOW).alerts
    resolved = [a for a in later if a.key == first.key]
    assert [a.status for a in resolved] == [AlertStatus.RESOLVED]
    assert resolved[0].id == first.id and resolved[0].revision == spikes[-1].revision + 1


def test_redelivered_posts_and_official_accounts_do_not_count() -> None:
    detector = _detector()
    _history(detector)
    hour = T0 + timedelta(days=7, hours=3)
    same = [_post(hour + timedelta(minutes=1), key="x:again") for _ in range(20)]
    assert not _spikes(detector.add(same, NOW).alerts)
    observer = AlertObserver("enriched", "topics")
    post = EnrichedPost(
        id="1",
        platform=Platform.X,
        text="Mohon maaf atas gangguan air",
        created_at=hour,
        author=Author(handle="@bpbd_banten"),
        agencies=[Agency.BPBD, Agency.PDAM],
        official_account=Agency.BPBD,
        sentiment=Sentiment(label=SentimentLabel.NEUTRAL, score=0.9, scores={SentimentLabel.NEUTRAL: 0.9}),
        category=Category.AIR_BERSIH,
        category_confidence=0.9,
        is_public_service=True,
        model_version="t",
        processed_at=hour,
    )
    record = Record("enriched", 0, 0, b"x:1", post.model_dump_json().encode())
    assert observer.observe(record) is None
    citizen = post.model_copy(
        update={"author": Author(handle="@warga"), "text": "tolong banjir besar", "official_account": None}
    )
    out = observer.observe(Record("enriched", 0, 1, b"x:1", citizen.model_dump_json().encode()))
    assert isinstance(out, Outgoing)
    assert isinstance(observer.observe(Record("enriched", 0, 2, b"x:2", b"{not json")), Failed)


def test_a_quiet_agency_and_short_history_raise_nothing() -> None:
    detector = _detector()
    _history(detector, days=2)  # below the three days a baseline needs
    hour = T0 + timedelta(days=2, hours=3)
    alerts = detector.add([_post(hour + timedelta(minutes=i)) for i in range(15)], NOW).alerts
    assert not _spikes(alerts)
    steady = _detector()
    _history(steady, per_hour=3)
    hour = T0 + timedelta(days=7, hours=3)
    assert not _spikes(steady.add([_post(hour + timedelta(minutes=i)) for i in range(4)], NOW).alerts)


def test_an_emergency_fires_on_the_third_urgent_post_in_a_region_without_a_baseline() -> None:
    detector = _detector()
    at = T0 + timedelta(hours=1)
    posts = [
        _post(at + timedelta(minutes=i), agency="bpbd", region="3602", category="bencana", urgent=True)
        for i in range(5)
    ]
    fired = [detector.add([p], NOW).alerts for p in posts]
    assert fired[0] == [] and fired[1] == []
    (alert,) = [a for a in fired[2] if a.kind == AlertKind.EMERGENCY]
    assert alert.severity == Severity.CRITICAL and alert.region == Region.KAB_LEBAK and alert.count == 3
    assert fired[3] == [] and fired[4] == []  # the open emergency takes later posts quietly
    # an hour later (stream time) the window is over: resolved
    done = detector.add([_post(at + timedelta(hours=1), agency="dinkes", region="3601")], NOW).alerts
    assert [(a.key, a.status) for a in done] == [("emergency:region=3602", AlertStatus.RESOLVED)]


def test_an_emergency_whose_posts_arrive_late_still_fires_once() -> None:
    """Another partition ran ahead by two days: the flood's posts arrive after later ones, one of them
    out of order, and a fourth after the emergency resolved; it fires once, about the flood's own time."""
    detector = _detector()
    flood = T0 + timedelta(days=1, hours=5)
    detector.add([_post(flood + timedelta(days=2), agency="dinkes", region="3601")], NOW)

    def urgent(minutes: int) -> Record:
        at = flood + timedelta(minutes=minutes)
        return _post(at, agency="bpbd", region="3602", category="bencana", urgent=True)

    fired = [detector.add([urgent(m)], NOW).alerts for m in (10, 0, 6, 20)]
    assert fired[0] == [] and fired[1] == [] and fired[3] == []  # the fourth joins it quietly
    emergencies = [a for a in fired[2] if a.kind == AlertKind.EMERGENCY]
    assert [(a.status, a.count) for a in emergencies] == [(AlertStatus.FIRING, 3)]
    assert emergencies[0].window_start == flood and emergencies[0].window_end == flood + timedelta(minutes=10)
    # the stream moves on: resolved
    later = detector.add([_post(flood + timedelta(days=2, hours=1), agency="dinkes", region="3601")], NOW)
    assert [(a.key, a.status) for a in later.alerts] == [("emergency:region=3602", AlertStatus.RESOLVED)]
    # more late posts of that morning: the four already behind it start nothing; three new ones do
    again = [detector.add([urgent(m)], NOW).alerts for m in (25, 28, 31)]
    assert again[0] == [] and again[1] == []
    (second,) = [a for a in again[2] if a.kind == AlertKind.EMERGENCY]
    assert second.count == 3 and second.window_start == flood + timedelta(minutes=25)
    assert second.id != emergencies[0].id


def test_state_survives_a_restart_and_a_replay_mints_nothing_new() -> None:
    detector = _detector()
    _history(detector, per_hour=1)
    hour = T0 + timedelta(days=7, hours=3)
    posts = [_post(hour + timedelta(minutes=i)) for i in range(10)]
    alerts = _spikes(detector.add(posts, NOW).alerts)
    assert alerts
    entries = [(k, v) for k, v in detector.changes().items() if v is not None]
    again = _detector()
    again.restore(entries)
    assert _spikes(again.add(posts, NOW).alerts) == []  # the same posts again: counted already
    # a fresh detector fed the same stream names the same alert
    fresh = _detector()
    _history(fresh, per_hour=1)
    assert _spikes(fresh.add(posts, NOW).alerts)[0].id == alerts[0].id


def test_emerging_topic_and_silence() -> None:
    detector = _detector()
    topic = EmergingTopic(
        id="tp_1",
        label="banjir · ciruas",
        size=12,
        posts_last_hour=9,
        posts_prev_hour=1,
        growth=4.5,
        first_seen=T0,
        last_seen=T0,
        updated_at=T0,
    )
    record = Record("in", 0, 0, b"topic:tp_1", AlertInput(topic=topic).model_dump_json().encode())
    (alert,) = detector.add([record], NOW).alerts
    assert alert.kind == AlertKind.EMERGING_TOPIC and alert.topic and alert.topic.label == "banjir · ciruas"
    ended = Record("in", 0, 1, b"topic:tp_1", AlertInput(topic_ended="tp_1").model_dump_json().encode())
    assert [a.status for a in detector.add([ended], NOW).alerts] == [AlertStatus.RESOLVED]

    quiet = _detector(silence_after=3600)
    quiet.add([_post(T0)], NOW)
    assert quiet.check_silence(NOW + timedelta(minutes=30)) == []
    (silence,) = quiet.check_silence(NOW + timedelta(hours=2))
    assert silence.key == "silence:stream" and quiet.check_silence(NOW + timedelta(hours=3)) == []
    back = quiet.add([_post(T0 + timedelta(minutes=5))], NOW + timedelta(hours=3)).alerts
    assert [(a.key, a.status) for a in back] == [("silence:stream", AlertStatus.RESOLVED)]


def test_a_slow_burst_is_found_by_a_longer_window_and_the_bench_scores_it() -> None:
    from pipeline.bench.alerts import GeneratorParams, score

    detector = _detector()
    quiet = [1, 0, 1, 1, 0, 3]
    assert detector.spike_decision(quiet, [0.5] * 6, 18) is None
    slow = [3, 3, 4, 3, 4, 3]  # no hour reaches the minimum count, six hours together do
    assert detector.spike_decision(slow[-1:], [0.5], 18) is None
    assert detector.spike_decision(slow, [0.5] * 6, 18) == Severity.WARNING
    assert detector.spike_decision([*slow[:-1], 0], [0.5] * 6, 18) is None  # over: the window stops
    small = GeneratorParams(hours=120 * 24, agencies=3, bursts_per_agency=6)
    result = score((7,), DetectorConfig(), small)
    assert result.target_bursts > 0 and result.recall > 0.5 and result.false_per_agency_week < 1
    oracle = score((7,), DetectorConfig(), small, oracle=True)  # the same streams, the true rate as baseline
    assert oracle.target_bursts == result.target_bursts and oracle.recall > 0.5
    assert oracle.false_per_agency_week < 1


def test_a_rise_of_the_negative_share_is_a_negative_surge() -> None:
    detector = _detector()
    for hour in range(7 * 24):  # three posts an hour, one in three negative
        at = T0 + timedelta(hours=hour, minutes=5)
        detector.add([_post(at + timedelta(minutes=i), negative=i == 0) for i in range(3)], NOW)
    hour = T0 + timedelta(days=7, hours=3)
    calm = detector.add([_post(hour + timedelta(minutes=i), negative=i == 0) for i in range(3)], NOW).alerts
    assert not [a for a in calm if a.kind == AlertKind.NEGATIVE_SURGE]
    angry = detector.add(
        [_post(hour + timedelta(minutes=10 + i), negative=True) for i in range(12)], NOW
    ).alerts
    surges = [a for a in angry if a.key == "negative_surge:agency=pdam"]
    assert surges and surges[0].count >= 5 and "Sentimen negatif" in surges[0].summary


def test_a_key_whose_traffic_tripled_for_good_stops_looking_spiky_within_the_level_window() -> None:
    """Three weeks at 2 posts an hour, then 6 for good. The four-week baseline alone still expects the
    old level after a week and keeps finding a spike; moved to the last 7 days' level it does not."""
    series = "agency=pdam,region=3673"

    def decision_after(days_tripled: int, level_days: int) -> tuple[object, float]:
        detector = _detector(level_days=level_days)
        hours = (21 + days_tripled) * 24
        for hour in range(hours):
            at = T0 + timedelta(hours=hour, minutes=5)
            per_hour = 2 if hour < 21 * 24 else 6
            detector.add([_post(at + timedelta(minutes=i)) for i in range(per_hour)], NOW)
        last = detector.bucket_of(T0 + timedelta(hours=hours - 1))
        window = range(last - 5, last + 1)
        counts = [detector.buckets[i].counts[series] for i in window]
        expected = [detector.expected(series, i) or 0.0 for i in window]
        decision = detector.spike_decision(counts, expected, detector.tests_per_bucket(last))
        return decision, expected[-1]

    assert decision_after(1, level_days=7)[0] is not None  # the first day of the new level is a spike
    steady, level_expects = decision_after(8, level_days=7)
    assert steady is None and level_expects > 4.5
    still, plain_expects = decision_after(8, level_days=0)
    assert still is not None and plain_expects < 3.5
