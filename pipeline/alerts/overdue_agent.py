"""Faust wiring of the ``overdue_response`` digest (the decisions are in ``overdue.py``): a timer that,
once per period, reads the overdue records of ``pantau-responses`` and publishes one alert per agency on
``pantau.alerts`` (delivery matches, renders and sends it like any alert) and in the alerts index.

Only the worker holding detection's one input partition raises it (one writer of these alerts). The
period this process raised is kept in memory only: after a restart the period's digest is raised
again, with the same ids, and delivery's log in Elasticsearch keeps it from being sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import faust

from pipeline.alerts.detect import dump_alert
from pipeline.alerts.overdue import EXAMPLES, OverdueDigest, read_overdue, read_texts
from pipeline.embedded.stack import Endpoints
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import async_client

log = logging.getLogger("pantau.alerts")


def register_overdue_digest(
    app: faust.App, settings: Settings, endpoints: Endpoints, topic: Callable[[str], faust.TopicT]
) -> None:
    """Nothing when ``PANTAU_ALERTS_ENABLED`` is false."""
    if not settings.alerts_enabled:
        return
    digest = OverdueDigest(settings.response_digest_at, settings.response_digest_every, settings.kibana_url)
    alerts_topic = topic(settings.topic_alerts)
    raised: list[datetime] = []  # the period last raised by this process

    @app.timer(interval=max(min(settings.response_digest_every / 4, 60.0), 0.5))
    async def overdue_digest() -> None:
        now = datetime.now(UTC)
        period = digest.period(now)
        if raised and raised[-1] == period:
            return
        if (settings.topic_alerts_input, 0) not in app.consumer.assignment():
            return  # one writer: the worker that runs detection (its input has one partition)
        try:
            async with async_client(settings, endpoints.elasticsearch) as es:
                overdue = digest.overdue(await read_overdue(es, settings.responses_index, now), now)
                keys = [d.complaint_key for docs in overdue.values() for d in docs[:EXAMPLES]]
                alerts = digest.alerts(overdue, await read_texts(es, settings.index_alias, keys), now)
                for alert in alerts:  # the topic first: a crash before the index raises it again
                    await (await alerts_topic.send(key=alert.key.encode(), value=dump_alert(alert)))
                    await es.index(
                        index=settings.alerts_index, id=alert.id, document=alert.model_dump(mode="json")
                    )
        except Exception:
            log.exception("overdue digest of %s not raised yet; trying again", period.isoformat())
            return
        raised[:] = [period]
        for alert in alerts:
            log.info("alert firing %s: %s", alert.key, alert.summary)
