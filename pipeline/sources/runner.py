"""Runs a connector: asks, sends what came back, and saves the cursor only once the broker has it."""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kafka import KafkaProducer

from pipeline.settings import Settings
from pipeline.sources.connector import (
    SHAPE_ERRORS,
    AccessDenied,
    Connector,
    Cursor,
    Page,
    QuotaSpent,
    Request,
    SourceError,
    Stream,
)
from pipeline.sources.cursors import CursorStore
from pipeline.sources.http import Fetcher, bare_url, excerpt
from pipeline.sources.metrics import (
    ConnectorMetrics,
    Quota,
    RateLimit,
    read_metrics,
    today,
    write_metrics,
)
from pipeline.sources.sender import send_posts, send_tombstones

log = logging.getLogger("pantau.ingest")


@dataclass
class RoundReport:
    fetched: int = 0
    sent: int = 0
    rejected: int = 0
    deleted: int = 0
    quota_spent: bool = False


def pause_after(cost: int, budget: int, poll_interval: float) -> float:
    """Seconds until the next round: the poll interval, or longer where rounds that cost this much would
    spend the day's budget before the day ends (the budget is spread over the day, not spent by morning)."""
    if budget <= 0:
        return poll_interval
    return max(poll_interval, cost * 86_400 / budget)


class Runner:
    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        connector: Connector,
        producer: KafkaProducer,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.connector = connector
        self.producer = producer
        self.stop = stop or threading.Event()
        self.cursors = CursorStore(settings, bootstrap, connector.name, producer)
        self.metrics = ConnectorMetrics(
            connector=connector.name,
            platform=connector.platform.value,
            pid=os.getpid(),
            started_at=datetime.now(UTC),
            queries=[stream.description for stream in connector.streams],
        )
        budget = settings.ingest_quota.get(
            connector.platform.value, settings.ingest_quota.get(connector.name, 0)
        )
        self.metrics.quota = Quota(day=today(), budget=budget)
        previous = read_metrics(settings, connector.name)
        if previous and previous.quota and previous.quota.day == today():  # a restart spends the same day
            self.metrics.quota.used = previous.quota.used
        self.fetcher = Fetcher(
            connector.name,
            connector.credential,
            connector.auth,
            settings.ingest_max_attempts,
            settings.ingest_backoff_max,
            self.stop,
            on_wait=self._waiting,
        )
        self.loaded: dict[str, Cursor] | None = None

    def close(self) -> None:
        self.fetcher.close()

    def log_queries(self) -> None:
        for stream in self.connector.streams:
            log.info("%s: %s: %s", self.connector.name, stream.key, stream.description)

    def run_forever(self) -> None:
        """Rounds until stopped; a failed round (other than refused credentials) is logged and retried."""
        while not self.stop.is_set():
            used = self.metrics.quota.used if self.metrics.quota else 0
            try:
                self.run_round()
            except AccessDenied:
                raise
            except SourceError as exc:
                if self.stop.is_set():
                    break
                log.error("%s", exc)
            quota = self.metrics.quota
            cost = quota.used - used if quota and quota.used >= used else 0  # a new day resets the count
            pause = pause_after(cost, quota.budget if quota else 0, self.settings.ingest_poll_interval)
            self.metrics.state = "idle"
            self.metrics.next_round = datetime.now(UTC) + timedelta(seconds=pause)
            self.save_metrics()
            self.stop.wait(pause)
        self.metrics.state = "stopped"
        self.save_metrics()

    def run_round(self) -> RoundReport:
        report = RoundReport()
        if self.loaded is None:
            self.loaded = self.cursors.load()
            self.metrics.cursors = dict(self.loaded)
        since = datetime.now(UTC) - self.settings.ingest_horizon
        self.metrics.state = "polling"
        failed: list[SourceError] = []
        try:
            for stream in self.connector.streams:
                if self.stop.is_set():
                    break
                try:
                    self._run_stream(stream, since, report)
                except (AccessDenied, QuotaSpent):
                    raise  # the connector's credential or budget: no other stream would do better
                except SourceError as exc:
                    if self.stop.is_set():
                        raise
                    # One dead feed or refused hashtag must not starve the streams after it: they run,
                    # and this one starts again from its cursor next round.
                    if failed:
                        log.error("%s", exc)
                    failed.append(exc)
            if len(failed) == 1:
                raise failed[0]
            if failed:
                raise SourceError(f"{failed[0]} (and {len(failed) - 1} more streams failed, logged above)")
        except QuotaSpent as exc:
            report.quota_spent = True
            self.metrics.state = "quota spent"
            self.metrics.last_error = None
            log.warning("%s: the round stops here", exc)
        except SourceError as exc:
            self.metrics.last_error = str(exc)
            self.metrics.state = "failed"
            self.save_metrics()
            raise
        else:
            self.metrics.last_error = None
        self.save_metrics()
        return report

    def _run_stream(self, stream: Stream, since: datetime, report: RoundReport) -> None:
        assert self.loaded is not None
        request = stream.start(self.loaded.get(stream.key), since)
        while request is not None and not self.stop.is_set():
            page = self._fetch(stream, request)
            posts = list(page.posts)
            gone = list(page.deleted)
            pending: deque[Request] = deque(page.follow)
            while pending and not self.stop.is_set():  # a page's follow-ups (comments) before its cursor
                sub = self._fetch(stream, pending.popleft())
                posts += sub.posts
                gone += sub.deleted
                pending.extend(sub.follow)
                if sub.next is not None:
                    pending.append(sub.next)
            if self.stop.is_set():
                return  # this page's cursor is not saved: the next run asks for it again
            report.fetched += len(posts)
            self.metrics.fetched += len(posts)
            outcome = send_posts(self.producer, self.settings.topic_raw, posts)
            report.sent += outcome.sent
            report.rejected += len(outcome.rejected)
            self.metrics.sent += outcome.sent
            self.metrics.rejected += len(outcome.rejected)
            if gone:  # after the posts: a post sent and deleted in one page ends deleted
                removed = send_tombstones(self.producer, self.settings.topic_raw, gone)
                report.deleted += removed
                self.metrics.deleted += removed
            if page.cursor is not None:
                self.cursors.save(stream.key, page.cursor)  # after the acks: nothing covered is lost
                self.loaded[stream.key] = page.cursor
                self.metrics.cursors[stream.key] = page.cursor
            self.metrics.last_poll = datetime.now(UTC)
            self.save_metrics()
            request = page.next

    def _fetch(self, stream: Stream, request: Request) -> Page:
        quota = self.metrics.quota
        assert quota is not None
        if quota.day != today():
            quota.day, quota.used = today(), 0
        if quota.used + request.cost > quota.budget:
            raise QuotaSpent(f"{self.connector.name}: today's budget of {quota.budget} is used")
        quota.used += request.cost
        self.metrics.requests += 1
        response = self.fetcher.fetch(request)
        self.metrics.state = "polling"
        try:
            return stream.parse(request, response)
        except SHAPE_ERRORS as exc:
            log.debug("%s: %s: parse failed", self.connector.name, stream.key, exc_info=True)
            # An answer not shaped as documented (an HTML error page with 200, a changed field): this
            # stream's round fails with a clear line and starts again from its cursor; nothing is lost.
            raise SourceError(
                f"{self.connector.name}: {stream.key}: unexpected answer from {bare_url(request.url)} "
                f"({type(exc).__name__}: {str(exc)[:200]}): {excerpt(response.body)}"
            ) from None

    def _waiting(self) -> None:
        self.metrics.state = "waiting"
        self.save_metrics()

    def save_metrics(self) -> None:
        rate = self.fetcher.rate
        self.metrics.rate_limit = RateLimit(
            remaining=rate.remaining,
            reset_at=_stamp(rate.reset_at),
            waiting_until=_stamp(rate.waiting_until),
            limited=rate.limited,
        )
        write_metrics(self.settings, self.metrics)


def _stamp(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None
