"""Faust wiring of what the alerts send on a schedule rather than on an event (the decisions are in
``overdue.py`` and ``briefs.py``): two timers, on the worker holding detection's one input partition
only, so one worker writes these alerts and sends these briefs.

``overdue_response``: once per period, the overdue records of ``pantau-responses`` become one alert per
    agency on ``pantau.alerts`` (delivery matches, renders and sends it like any alert) and in the alerts
    index. The period this process raised is kept in memory only: after a restart the period's digest is
    raised again, with the same ids, and delivery's log in Elasticsearch keeps it from being sent twice.
briefs: every ``PANTAU_BRIEF_CHECK_INTERVAL``, each subscriber with ``brief:`` whose period's brief is not
    in the delivery log gets it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import faust
import httpx

from pipeline.alerts.briefs import BriefScheduler, make_brief
from pipeline.alerts.detect import dump_alert
from pipeline.alerts.overdue import EXAMPLES, OverdueDigest, read_overdue, read_texts
from pipeline.alerts.store import AlertStore
from pipeline.alerts.subscribers import SubscribersWatcher
from pipeline.embedded.stack import Endpoints
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import async_client

log = logging.getLogger("pantau.alerts")


def register_scheduled(
    app: faust.App, settings: Settings, endpoints: Endpoints, topic: Callable[[str], faust.TopicT]
) -> None:
    """Nothing when ``PANTAU_ALERTS_ENABLED`` is false."""
    if not settings.alerts_enabled:
        return

    def owner() -> bool:
        return (settings.topic_alerts_input, 0) in app.consumer.assignment()

    digest = OverdueDigest(settings.response_digest_at, settings.response_digest_every, settings.kibana_url)
    alerts_topic = topic(settings.topic_alerts)
    raised: list[datetime] = []  # the period last raised by this process

    @app.timer(interval=max(min(settings.response_digest_every / 4, 60.0), 0.5))
    async def overdue_digest() -> None:
        now = datetime.now(UTC)
        period = digest.period(now)
        if (raised and raised[-1] == period) or not owner():
            return
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

    watcher = SubscribersWatcher(settings.alerts_file)
    briefs = BriefScheduler(
        settings, AlertStore(settings, endpoints), make_brief(settings, endpoints.elasticsearch)
    )

    @app.timer(interval=settings.brief_check_interval)
    async def scheduled_briefs() -> None:
        subscribers = [s for s in watcher.get().subscribers if s.brief is not None]
        if not subscribers or not owner():
            return
        try:
            async with httpx.AsyncClient(timeout=settings.alerts_timeout) as client:
                await briefs.tick(client, subscribers, datetime.now(UTC))
        except Exception:
            log.exception("scheduled briefs: trying again in %.0f s", settings.brief_check_interval)
        finally:
            await briefs.store.close()
