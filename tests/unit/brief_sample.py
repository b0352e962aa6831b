"""A brief's data with every section filled, and hostile markup wherever text comes from posts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.brief.data import Alert, BriefData, Headline, Indices, Period, Post, Topic
from pipeline.responsiveness.report import ResponsivenessRow

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'"> jalan rusak'
END = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)  # 29 Nov 00:00 WIB


def sample_data(alerts: bool = True, responses: bool = True) -> BriefData:
    period = Period(start=END - timedelta(days=7), end=END)
    days = period.days()
    return BriefData(
        period=period,
        current=Headline(posts=120, negative=48, public_service=90, agencies=7),
        previous=Headline(posts=100, negative=50, public_service=80, agencies=6),
        volume_by_agency={
            "pdam": {d: 3 + i for i, d in enumerate(days)},
            "samsat": {d: 2 for d in days},
            HOSTILE: {days[0]: 1},
        },
        sentiment_by_day={d: {"negative": 4, "neutral": 3, "positive": 1 + i} for i, d in enumerate(days)},
        category_region={"Kab. Lebak": {"bencana": 9, "air_bersih": 2}, "Kota Serang": {"kesehatan": 4}},
        region_counts={"3602": (30, 20), "3673": (12, 3), "3671": (40, 10)},
        topics=[
            Topic(
                label="banjir · lebak",
                size=14,
                growth=3.5,
                last_seen=END - timedelta(hours=2),
                agencies=["bpbd"],
                examples=[HOSTILE, "banjir di Rangkasbitung, hubungi [TELEPON]"],
            )
        ],
        alerts=[
            Alert(
                raised_at=END - timedelta(hours=5),
                kind="spike",
                severity="high",
                summary=HOSTILE,
                agencies=["bpbd"],
                kibana_url="javascript:alert(1)",
            )
        ]
        if alerts
        else None,
        responsiveness=[
            ResponsivenessRow(
                agency="pdam",
                complaints=10,
                responded=6,
                reply_rate=0.6,
                median_first_response_s=5400.0,
                p90_first_response_s=90000.0,
                overdue=3,
            )
        ]
        if responses
        else None,
        engaged_negative=[
            Post(
                key="x:1",
                text=HOSTILE,
                url="https://x.com/warga/status/1",
                platform="x",
                author="warga",
                created_at=END - timedelta(hours=30),
                agencies=["dpupr"],
                region_name="Kab. Lebak",
                engagement=900,
            ),
            Post(
                key="x:2",
                text="air mati lagi",
                url='javascript:alert("x")',
                platform="x",
                created_at=END - timedelta(hours=40),
                engagement=10,
            ),
        ],
        indices=Indices(
            posts="pantau-posts", topics="pantau-topics", alerts="pantau-alerts", responses="pantau-responses"
        ),
    )
