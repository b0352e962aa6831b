"""Delivering alerts to subscribers, in the Alertmanager way, at least once.

Each alert on ``pantau.alerts`` is matched against the subscribers file (read again when it changes).
What a subscriber should get waits ``group_wait`` so alerts that come together go out as one message;
a new episode of a key notified less than ``cooldown`` ago is held back; silenced, stale (window ended
more than ``max_age`` ago) and opted-out alerts are not sent. Quiet hours and digests queue the alert in
``pantau-deliveries`` and send it when the quiet hours end or at ``digest_at`` (critical emergencies
override quiet hours).

Each subscriber sends on its own task, so one that fails never delays the others. A send is retried with
exponential back-off; each attempt is written to ``pantau-deliveries`` (id = the ``webhook-id``), which is
read before sending, so a redelivered alert is not sent twice; one that fails for good goes to the
dead-letter topic. The Kafka message is acknowledged only when every subscriber's delivery of it ended.

Everything that decides "send or not" is in ``pantau-deliveries`` too, since the embedded broker loses
every topic at ``pantau down``: a notification waiting ``group_wait`` is logged ``pending`` before it
joins its group, and the log entries of what was sent (with the alert) give back the cooldowns and the
reminders, so a worker started on an empty broker sends what was pending and re-pages no one. Each
alert revision taken is marked there too; a starting worker takes the recent alerts of ``pantau-alerts``
that carry no mark (detected, but lost with the topic before delivery read them).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import TypeVar
from zoneinfo import ZoneInfo

import httpx
from pydantic import ValidationError

from pipeline import metrics
from pipeline.alerts.channels import SendError, send
from pipeline.alerts.store import AlertStore, Delivery, DeliveryStatus, Silence, message_id
from pipeline.alerts.subscribers import SubscribersWatcher
from pipeline.kafka.deadletter import DeadLetterer
from pipeline.settings import Settings
from pipeline.stages.records import Failed, Record
from pipeline.validation import describe_validation_error
from schemas.alerts import SCHEDULED_KINDS, Alert, AlertKind, AlertStatus, Severity
from schemas.subscribers import Subscriber

log = logging.getLogger("pantau.alerts")
T = TypeVar("T")
JAKARTA = ZoneInfo("Asia/Jakarta")
SILENCES_REFRESH = 10.0
"""Seconds between re-reads of the silences (set by `pantau alerts silence` in Elasticsearch)."""
QUEUE_CHECK = 10.0
"""Seconds between looks at queued notifications (quiet hours ended, digest due)."""
RESTORE_DAYS = 7
"""How far back a starting worker reads what was sent: cooldowns are far shorter, and an alert still
firing is logged again at each reminder."""


class Countdown:
    """Calls ``done`` once ``count`` parts have finished."""

    def __init__(self, count: int, done: Callable[[], None]) -> None:
        self.count = count
        self.done = done

    def one(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.done()


@dataclass
class Pending:
    alert: Alert
    record: Record
    finished: Callable[[], None]
    repeat: int = 0
    """A reminder (the n-th) of an alert still firing: sent again even though the log says sent."""


@dataclass
class Reminder:
    """An alert a subscriber was told about that has not resolved: re-sent every ``repeat_interval``."""

    alert: Alert
    record: Record
    sent_at: float
    """Wall-clock seconds (it outlives the worker: see ``restore_state``)."""
    repeat: int = 0


def alert_record(topic: str, alert: Alert) -> Record:
    """A stand-in for the Kafka message of an alert read back from Elasticsearch (for dead letters)."""
    return Record(topic, -1, -1, alert.key.encode(), alert.model_dump_json().encode())


@dataclass
class DeliveryState:
    """What a starting worker rebuilds from the delivery log: the last notification per (subscriber,
    key) for the cooldown, and the alerts still firing that a subscriber was told about, for reminders."""

    notified: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    reminders: dict[tuple[str, str], Reminder] = field(default_factory=dict)


def restore_state(delivered: list[Delivery], current: dict[str, Alert], topic: str) -> DeliveryState:
    """``delivered``: log entries of notifications sent; ``current``: the latest revision of their
    alerts in the alerts index, so an alert that resolved meanwhile (even unnoticed by a subscriber
    opted out of resolved notices) is not reminded about."""
    state = DeliveryState()
    told: dict[tuple[str, str], tuple[Delivery, Alert]] = {}
    resolved: set[tuple[str, str]] = set()
    for entry in sorted(delivered, key=lambda d: d.updated_at):
        if entry.alert is None:
            continue
        alert = Alert.model_validate_json(entry.alert)
        if alert.test:
            continue
        pair = (entry.subscriber, alert.id)
        if alert.status == AlertStatus.RESOLVED:
            resolved.add(pair)
            continue
        at = entry.updated_at.timestamp()
        state.notified[(entry.subscriber, alert.key)] = (alert.id, at)
        if pair not in told or alert.revision >= told[pair][1].revision:
            told[pair] = (entry, alert)
    for pair, (entry, alert) in told.items():
        latest = current.get(alert.id)
        if pair in resolved or (latest is not None and latest.status == AlertStatus.RESOLVED):
            continue
        if latest is not None and latest.revision > alert.revision:
            alert = latest
        if alert.kind in SCHEDULED_KINDS:  # a digest is said once per period, never reminded
            continue
        state.reminders[pair] = Reminder(
            alert, alert_record(topic, alert), entry.updated_at.timestamp(), entry.repeat
        )
    return state


def _clock(text: str) -> clock_time:
    """``HH:MM`` or ``HH:MM:SS``."""
    hours, minutes, *seconds = (int(part) for part in text.split(":"))
    return clock_time(hours, minutes, seconds[0] if seconds else 0)


def in_quiet_hours(subscriber: Subscriber, now: datetime) -> bool:
    if not subscriber.quiet_hours:
        return False
    start, end = (_clock(part) for part in subscriber.quiet_hours.split("-"))
    local = now.astimezone(JAKARTA).time()
    return start <= local < end if start <= end else local >= start or local < end


def overrides_quiet(alert: Alert) -> bool:
    return alert.kind == AlertKind.EMERGENCY and alert.severity == Severity.CRITICAL


def digest_due(subscriber: Subscriber, now: datetime) -> datetime | None:
    """The latest digest time at or before ``now`` (queued before it go out now)."""
    local = now.astimezone(JAKARTA)
    at = datetime.combine(local.date(), _clock(subscriber.digest_at), JAKARTA)
    return at if at <= local else at - timedelta(days=1)


def group_id(subscriber: str, alerts: list[Alert]) -> str:
    """One alert: its ``webhook-id``; a group: derived from its members', so it is stable too."""
    if len(alerts) == 1:
        return message_id(subscriber, alerts[0].id, alerts[0].revision)
    joined = "+".join(sorted(f"{a.id}.{a.revision}" for a in alerts))
    return "msg_" + hashlib.sha256(f"{subscriber}|{joined}".encode()).hexdigest()[:24]


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        store: AlertStore,
        dead_letters: DeadLetterer,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """``now``: the wall clock (quiet hours, digests, cooldowns, reminders, max age)."""
        self.settings = settings
        self.now = now or (lambda: datetime.now(UTC))
        self.store = store
        self.dead_letters = dead_letters
        self.watcher = SubscribersWatcher(settings.alerts_file)
        self.groups: dict[str, list[Pending]] = {}
        self.opened: dict[str, float] = {}
        self.busy: dict[str, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.silences: list[Silence] = []
        self.silences_at = 0.0
        self.queue_at = 0.0
        self.notified: dict[tuple[str, str], tuple[str, float]] = {}  # (subscriber, key) → (alert id, when)
        self.reminders: dict[tuple[str, str], Reminder] = {}  # (subscriber, alert id)
        self.restored = False
        self.client: httpx.AsyncClient | None = None
        smtp = settings.smtp_url
        self.smtp_url = smtp.get_secret_value() if smtp else None

    async def start(self) -> None:
        self.client = httpx.AsyncClient(timeout=self.settings.alerts_timeout)
        await self._refresh_silences(force=True)
        await self._retry(self._restore)
        await self._retry(self._take_missed)

    async def _take_missed(self) -> None:
        """Alerts detected but never taken: their messages were lost with the broker's topics (the
        embedded broker at `pantau down`) between detection and delivery."""
        since = self.now() - timedelta(seconds=self.settings.alerts_max_age)
        missed = await self.store.untaken_alerts(since)
        for alert in missed:
            self.take(alert_record(self.settings.topic_alerts, alert), lambda: None)
        if missed:
            log.info("%d alerts detected but never taken before the restart: taken now", len(missed))

    async def _restore(self) -> None:
        """Cooldowns, reminders and pending notifications from the delivery log (see the module's doc)."""
        if self.restored:
            return
        now = self.now()
        topic = self.settings.topic_alerts
        delivered = await self.store.delivered_since(now - timedelta(days=RESTORE_DAYS))
        current = await self.store.current_alerts(sorted({d.alert_id for d in delivered}))
        state = restore_state(delivered, current, topic)
        for pair, last in state.notified.items():
            if pair not in self.notified or self.notified[pair][1] < last[1]:
                self.notified[pair] = last
        for pair, reminder in state.reminders.items():
            self.reminders.setdefault(pair, reminder)
        waiting: list[tuple[str, Alert]] = []
        for entry in await self.store.pending():
            if entry.alert is None:
                continue
            alert = Alert.model_validate_json(entry.alert)
            if self._stale(alert, now):  # a backfill's, or the worker was down for hours
                await self.store.put_delivery(entry.model_copy(update={"status": "stale", "updated_at": now}))
            else:
                waiting.append((entry.subscriber, alert))
        for name, alert in waiting:  # the send checks the log again (a redelivered message may join)
            self.groups.setdefault(name, []).append(Pending(alert, alert_record(topic, alert), lambda: None))
            self.opened.setdefault(name, time.monotonic())
        self.restored = True
        log.info(
            "delivery state restored from Elasticsearch: %d keys in cooldown, %d reminders, %d pending",
            len(state.notified),
            len(state.reminders),
            len(waiting),
        )

    def _stale(self, alert: Alert, now: datetime) -> bool:
        return not alert.test and alert.window_end < now - timedelta(seconds=self.settings.alerts_max_age)

    async def stop(self) -> None:
        for task in [*self.tasks, *self.busy.values()]:
            task.cancel()
        if self.client is not None:
            await self.client.aclose()
        await self.store.close()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- intake ------------------------------------------------------------------------------------

    def take(self, record: Record, done: Callable[[], None]) -> None:
        """One message of ``pantau.alerts``; ``done`` is called once every delivery of it ended."""
        try:
            alert = Alert.model_validate_json(record.value or b"")
        except ValidationError as exc:
            failed = Failed(record, "delivery", describe_validation_error(exc))
            self._spawn(self._dead_letter([failed], [done]))
            return
        now = self.now()
        countdown = Countdown(1, done)
        for (name, known_id), reminder in list(self.reminders.items()):
            if known_id == alert.id:  # a resolve ends the reminders; a newer state is what they repeat
                if alert.status == AlertStatus.RESOLVED:
                    del self.reminders[(name, known_id)]
                elif alert.revision >= reminder.alert.revision:
                    reminder.alert, reminder.record = alert, record
        if self._stale(alert, now):
            log.info(
                "alert %s rev %d is stale (window ended %s): indexed, not delivered",
                alert.key,
                alert.revision,
                alert.window_end,
            )
            self._spawn(self._taken(alert, []))
            countdown.one()
            return
        silence = next((s for s in self.silences if s.active(now) and s.matches(alert)), None)
        if silence is not None and not alert.test:
            log.info("alert %s silenced by %s", alert.key, silence.id)
            self._spawn(self._taken(alert, []))
            countdown.one()
            return
        work: list[Awaitable[None]] = []
        for subscriber in self.watcher.get().subscribers:
            if not subscriber.match.matches(alert):
                continue
            if alert.status == AlertStatus.RESOLVED and not subscriber.resolved:
                continue
            if self._cooling(subscriber, alert):
                log.info("alert %s for %s held back: cooldown", alert.key, subscriber.name)
                continue
            countdown.count += 1
            queue = subscriber.mode == "digest" or (
                in_quiet_hours(subscriber, now) and not overrides_quiet(alert)
            )
            if queue and not alert.test:
                work.append(self._queue(subscriber, alert, countdown.one))
                continue
            work.append(self._hold(subscriber, Pending(alert, record, countdown.one)))
        self._spawn(self._taken(alert, work))
        countdown.one()

    async def _taken(self, alert: Alert, work: list[Awaitable[None]]) -> None:
        """Each subscriber's notification logged (``pending`` or ``queued``), then the alert marked taken:
        a starting worker takes the alerts of the index that no worker took (``_take_missed``)."""
        await asyncio.gather(*work)
        await self._retry(lambda: self.store.mark_taken(alert))

    async def _hold(self, subscriber: Subscriber, item: Pending) -> None:
        """Log the notification ``pending`` (a restarted worker sends it), then let it wait in its group."""
        try:
            delivery = self._entry(subscriber, item.alert, "pending", 0)
            await self._retry(lambda: self.store.hold(delivery))
        except BaseException:
            item.finished()
            raise
        self.groups.setdefault(subscriber.name, []).append(item)
        self.opened.setdefault(subscriber.name, time.monotonic())

    def _cooling(self, subscriber: Subscriber, alert: Alert) -> bool:
        last = self.notified.get((subscriber.name, alert.key))
        if last is None or alert.status != AlertStatus.FIRING or alert.test or alert.kind in SCHEDULED_KINDS:
            return False
        last_id, at = last
        return last_id != alert.id and self.now().timestamp() - at < self.settings.alerts_cooldown

    async def _queue(self, subscriber: Subscriber, alert: Alert, finished: Callable[[], None]) -> None:
        try:
            delivery = self._entry(subscriber, alert, "queued", 0)
            existing = await self._retry(lambda: self.store.deliveries([delivery.id]))
            if delivery.id not in existing:
                await self._retry(lambda: self.store.put_delivery(delivery))
        finally:
            finished()

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """Elasticsearch calls are waited out (the alert stays unacknowledged meanwhile)."""
        delay = self.settings.bulk_backoff
        while True:
            try:
                return await call()
            except Exception as exc:  # connection errors, 5xx
                log.warning("deliveries index unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.bulk_backoff_max)

    # -- timer -------------------------------------------------------------------------------------

    async def tick(self) -> None:
        if not self.restored:  # the timer may run before the agent started
            return
        now = time.monotonic()
        subscribers = {s.name: s for s in self.watcher.get().subscribers}
        for name in list(self.groups):
            if name in self.busy or now - self.opened[name] < self.settings.alerts_group_wait:
                continue
            items = self.groups.pop(name)
            self.opened.pop(name, None)
            subscriber = subscribers.get(name)
            if subscriber is None:  # removed from the file meanwhile
                for item in items:
                    item.finished()
                continue
            self._start(subscriber, items)
        await self._refresh_silences()
        self._remind(subscribers)
        if now - self.queue_at >= QUEUE_CHECK:
            self.queue_at = now
            for subscriber in subscribers.values():
                if subscriber.name not in self.busy and (
                    subscriber.mode == "digest" or subscriber.quiet_hours
                ):
                    self._spawn(self._flush_queue(subscriber))

    def _remind(self, subscribers: dict[str, Subscriber]) -> None:
        """Alerts still firing that a subscriber heard about ``repeat_interval`` ago are sent again (not
        while silenced or in quiet hours)."""
        wall = self.now()
        now = wall.timestamp()
        for (name, alert_id), reminder in list(self.reminders.items()):
            subscriber = subscribers.get(name)
            if subscriber is None:
                del self.reminders[(name, alert_id)]
                continue
            interval = subscriber.repeat_interval or self.settings.alerts_repeat_interval
            if name in self.busy or now - reminder.sent_at < interval:
                continue
            alert = reminder.alert
            silenced = any(s.active(wall) and s.matches(alert) for s in self.silences)
            quiet = in_quiet_hours(subscriber, wall) and not overrides_quiet(alert)
            if silenced or quiet or subscriber.mode == "digest":
                continue
            reminder.sent_at = now  # the next try is an interval later, whatever this one's fate
            item = Pending(alert, reminder.record, lambda: None, repeat=reminder.repeat + 1)
            self._start(subscriber, [item])

    def _start(self, subscriber: Subscriber, items: list[Pending], digest: bool = False) -> None:
        task = asyncio.ensure_future(self._send(subscriber, items, digest))
        self.busy[subscriber.name] = task
        task.add_done_callback(lambda _: self.busy.pop(subscriber.name, None))

    async def _refresh_silences(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.silences_at < SILENCES_REFRESH:
            return
        self.silences_at = time.monotonic()
        try:
            self.silences = [s for s in await self.store.silences() if s.ends_at > self.now()]
        except Exception as exc:
            log.warning("could not read silences (%s); keeping %d known", exc, len(self.silences))

    async def _flush_queue(self, subscriber: Subscriber) -> None:
        now = self.now()
        if subscriber.mode != "digest" and in_quiet_hours(subscriber, now):
            return
        try:
            queued = await self.store.queued(subscriber.name)
        except Exception as exc:
            log.warning("could not read queued notifications (%s)", exc)
            return
        if subscriber.mode == "digest":
            due = digest_due(subscriber, now)
            queued = [q for q in queued if due is not None and q.updated_at < due]
        items = []
        for q in queued:
            if q.alert is None:
                continue
            alert = Alert.model_validate_json(q.alert)
            items.append(Pending(alert, alert_record(self.settings.topic_alerts, alert), lambda: None))
        if items and subscriber.name not in self.busy:
            self._start(subscriber, items, digest=subscriber.mode == "digest")

    # -- sending -----------------------------------------------------------------------------------

    async def _send(self, subscriber: Subscriber, items: list[Pending], digest: bool) -> None:
        try:
            latest: dict[str, Pending] = {}
            for item in items:  # a group holding two revisions of one alert sends the newer
                if item.alert.id not in latest or item.alert.revision > latest[item.alert.id].alert.revision:
                    latest[item.alert.id] = item
            chosen = list(latest.values())
            ids = {message_id(subscriber.name, p.alert.id, p.alert.revision): p for p in chosen}
            logged = await self._retry(lambda: self.store.deliveries(list(ids)))
            todo = [
                p for mid, p in ids.items() if p.repeat or mid not in logged or logged[mid].status != "sent"
            ]
            if todo:
                await self._attempts(subscriber, todo, digest)
        finally:
            for item in items:
                item.finished()

    async def _attempts(self, subscriber: Subscriber, todo: list[Pending], digest: bool) -> None:
        assert self.client is not None
        alerts = [p.alert for p in todo]
        repeat = max(p.repeat for p in todo)
        msg_id = group_id(subscriber.name, alerts) + (f"_r{repeat}" if repeat else "")
        delay = self.settings.alerts_retry_backoff
        attempts = self.settings.alerts_retry_max_attempts
        for attempt in range(1, attempts + 1):
            await self._log(subscriber, alerts, "sending", attempt, repeat=repeat)
            try:
                await send(
                    self.client,
                    subscriber,
                    msg_id,
                    alerts,
                    self.smtp_url,
                    self.settings.alerts_timeout,
                    digest,
                )
            except SendError as exc:
                metrics.alert_delivered(subscriber.channel, sent=False)
                final = not exc.retryable or attempt == attempts
                log.warning(
                    "delivery to %s failed (attempt %d/%d): %s",
                    subscriber.name,
                    attempt,
                    attempts,
                    exc.reason,
                    exc_info=exc.__cause__,  # the traceback of an unexpected error (see channels.py)
                )
                if final:
                    await self._log(subscriber, alerts, "failed", attempt, exc.reason, repeat)
                    failed = [
                        Failed(
                            p.record, "delivery", f"{subscriber.name} ({subscriber.channel}): {exc.reason}"
                        )
                        for p in todo
                    ]
                    await self.dead_letters.deliver(failed)
                    return
                await self._log(subscriber, alerts, "sending", attempt, exc.reason, repeat)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.bulk_backoff_max)
                continue
            metrics.alert_delivered(subscriber.channel, sent=True)
            await self._log(subscriber, alerts, "sent", attempt, repeat=repeat)
            sent_at = self.now().timestamp()
            for item in todo:
                alert = item.alert
                if alert.status == AlertStatus.FIRING:
                    self.notified[(subscriber.name, alert.key)] = (alert.id, sent_at)
                    if alert.kind in SCHEDULED_KINDS:  # once per period: the next period says it again
                        continue
                    self.reminders[(subscriber.name, alert.id)] = Reminder(
                        alert, item.record, sent_at, item.repeat
                    )
                else:
                    self.reminders.pop((subscriber.name, alert.id), None)
            log.info(
                "delivered %d alerts to %s (%s) as %s",
                len(alerts),
                subscriber.name,
                subscriber.channel,
                msg_id,
            )
            return

    async def _log(
        self,
        subscriber: Subscriber,
        alerts: list[Alert],
        status: DeliveryStatus,
        attempts: int,
        error: str | None = None,
        repeat: int = 0,
    ) -> None:
        for alert in alerts:
            delivery = self._entry(subscriber, alert, status, attempts, error, repeat)
            await self._retry(functools.partial(self.store.put_delivery, delivery))

    def _entry(
        self,
        subscriber: Subscriber,
        alert: Alert,
        status: DeliveryStatus,
        attempts: int,
        error: str | None = None,
        repeat: int = 0,
    ) -> Delivery:
        return Delivery(
            subscriber=subscriber.name,
            channel=subscriber.channel,
            alert_id=alert.id,
            alert_key=alert.key,
            revision=alert.revision,
            status=status,
            attempts=attempts,
            error=error,
            alert=alert.model_dump_json(),
            repeat=repeat,
            updated_at=self.now(),
        )

    async def _dead_letter(self, failed: list[Failed], done: list[Callable[[], None]]) -> None:
        try:
            await self.dead_letters.deliver(failed)
        finally:
            for call in done:
                call()


async def send_test(settings: Settings, subscriber: Subscriber, alert: Alert) -> None:
    """`pantau subscribers test`: one attempt, not logged, errors raised (``SendError``)."""
    smtp = settings.smtp_url.get_secret_value() if settings.smtp_url else None
    async with httpx.AsyncClient(timeout=settings.alerts_timeout) as client:
        msg_id = message_id(subscriber.name, alert.id, alert.revision)
        await send(client, subscriber, msg_id, [alert], smtp, settings.alerts_timeout)
