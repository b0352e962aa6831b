"""Scheduled briefs: a subscriber with ``brief:`` (``schemas/subscribers.py``) gets the HTML brief of
`pantau report` once per period, as an e-mail attachment or a Telegram document (``sendDocument``,
multipart), the PDF too when asked for.

Each period's brief is one delivery, named by the subscriber and the period's end (``due``), and logged in
``pantau-deliveries`` like an alert's: the log is read before sending, so a restarted worker, or a second
look in the same period, does not send it again. A send is retried with the alerts' back-off; one that
fails for good is logged ``failed`` and waits for the next period (nothing is dead-lettered: no Kafka
message carried it).
"""

from __future__ import annotations

import asyncio
import html
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx

from pipeline.alerts.channels import SendError, _post, failures_as_send_errors, send_mail
from pipeline.alerts.store import AlertStore, Delivery, DeliveryStatus, message_id
from pipeline.settings import Settings
from schemas.subscribers import JAKARTA, BriefSchedule, Subscriber

log = logging.getLogger("pantau.alerts")
TITLE = {"id": "Ringkasan Pantau Banten", "en": "Pantau Banten brief"}
BODY = {
    "id": "Ringkasan periode ini terlampir; buka berkas HTML di peramban (juga di ponsel).",
    "en": "The brief of the period is attached; open the HTML file in a browser (a phone's too).",
}


@dataclass(frozen=True)
class BriefFile:
    name: str
    content: bytes
    mime: str


BriefMaker = Callable[[BriefSchedule, datetime, str], list[BriefFile]]
"""(schedule, period end, language) → the files to send; blocking (Elasticsearch, Chromium)."""


def brief_ref(due: datetime) -> str:
    """What the delivery log names the period by (its ``alert_id``)."""
    return "brief:" + due.astimezone(UTC).isoformat()


def title(schedule: BriefSchedule, due: datetime, lang: str) -> str:
    start, end = (due - schedule.length).astimezone(JAKARTA), due.astimezone(JAKARTA)
    where = " · ".join(x for x in (schedule.agency and schedule.agency.value.upper(), schedule.region) if x)
    span = f"{start:%d-%m}–{end:%d-%m-%Y}"
    return f"{TITLE[lang]} {span}" + (f" ({where})" if where else "")


def make_brief(settings: Settings, es_url: str) -> BriefMaker:
    """The brief as `pantau report` writes it, for the schedule's period, agency, region and language."""

    def make(schedule: BriefSchedule, due: datetime, lang: str) -> list[BriefFile]:
        from pipeline.brief.data import Indices, Period, collect
        from pipeline.brief.pdf import print_pdf
        from pipeline.brief.render import render
        from pipeline.sinks.elasticsearch import sync_client

        period = Period(start=(due - schedule.length).astimezone(UTC), end=due.astimezone(UTC))
        es = sync_client(settings, es_url)
        try:
            agency = schedule.agency.value if schedule.agency else None
            region = schedule.region.value if schedule.region else None
            data = collect(es, Indices.of(settings), period, agency, region)
        finally:
            es.close()
        page = render(data, "en" if lang == "en" else "id")
        name = f"pantau-brief-{due.astimezone(JAKARTA):%Y-%m-%d}"
        files = [BriefFile(f"{name}.html", page.encode(), "text/html")]
        if schedule.pdf:
            with tempfile.TemporaryDirectory() as folder:
                source, target = Path(folder, f"{name}.html"), Path(folder, f"{name}.pdf")
                source.write_text(page, encoding="utf-8")
                print_pdf(source, target)
                files.append(BriefFile(target.name, target.read_bytes(), "application/pdf"))
        return files

    return make


async def send_brief(
    client: httpx.AsyncClient,
    subscriber: Subscriber,
    subject: str,
    files: Sequence[BriefFile],
    lang: str,
    smtp_url: str | None,
    timeout: float,
) -> None:
    """One e-mail with the files attached, or one Telegram ``sendDocument`` per file; ``SendError``."""
    with failures_as_send_errors():
        if subscriber.telegram is not None:
            tg = subscriber.telegram
            url = f"{tg.api_base.rstrip('/')}/bot{tg.bot_token}/sendDocument"
            for file in files:
                fields = {
                    "chat_id": tg.chat_id,
                    "caption": f"<b>{html.escape(subject)}</b>",
                    "parse_mode": "HTML",
                }
                await _post(
                    client, url, data=fields, files={"document": (file.name, file.content, file.mime)}
                )
        elif subscriber.email is not None:
            channel = subscriber.email
            smtp = channel.smtp_url or smtp_url
            if not smtp:
                raise SendError(
                    "no smtp_url for this subscriber and PANTAU_SMTP_URL is not set", retryable=False
                )
            mail = EmailMessage()
            mail["Subject"] = subject
            mail.set_content(BODY[lang])
            for file in files:
                maintype, subtype = file.mime.split("/")
                mail.add_attachment(file.content, maintype=maintype, subtype=subtype, filename=file.name)
            await asyncio.get_running_loop().run_in_executor(
                None, send_mail, smtp, channel.sender, channel.to, mail, timeout
            )
        else:
            raise SendError(f"a brief cannot go by {subscriber.channel}", retryable=False)


class BriefScheduler:
    """Looks at the subscribers with a brief, one after the other, and sends each one's due brief unless
    the delivery log says it went out."""

    def __init__(self, settings: Settings, store: AlertStore, make: BriefMaker) -> None:
        self.settings = settings
        self.store = store
        self.make = make
        smtp = settings.smtp_url
        self.smtp_url = smtp.get_secret_value() if smtp else None

    async def tick(self, client: httpx.AsyncClient, subscribers: Sequence[Subscriber], now: datetime) -> None:
        for subscriber in subscribers:
            if subscriber.brief is not None:
                await self.one(client, subscriber, subscriber.brief, now)

    async def one(
        self, client: httpx.AsyncClient, subscriber: Subscriber, schedule: BriefSchedule, now: datetime
    ) -> None:
        due = schedule.due(now)
        ref = brief_ref(due)
        msg_id = message_id(subscriber.name, ref, 1)
        logged = (await self.store.deliveries([msg_id])).get(msg_id)
        if logged is not None and logged.status != "sending":  # sent, or failed for good: next period
            return
        lang = schedule.lang or subscriber.lang
        files = await asyncio.to_thread(self.make, schedule, due, lang)
        subject = title(schedule, due, lang)
        delay = self.settings.alerts_retry_backoff
        attempts = self.settings.alerts_retry_max_attempts
        for attempt in range(1, attempts + 1):
            await self._log(subscriber, ref, "sending", attempt)
            try:
                await send_brief(
                    client, subscriber, subject, files, lang, self.smtp_url, self.settings.alerts_timeout
                )
            except SendError as exc:
                log.warning("brief to %s failed (attempt %d/%d): %s", subscriber.name, attempt, attempts, exc)
                if not exc.retryable or attempt == attempts:
                    await self._log(subscriber, ref, "failed", attempt, exc.reason)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.bulk_backoff_max)
                continue
            await self._log(subscriber, ref, "sent", attempt)
            log.info("brief %s sent to %s (%s) as %s", ref, subscriber.name, subscriber.channel, msg_id)
            return

    async def _log(
        self,
        subscriber: Subscriber,
        ref: str,
        status: DeliveryStatus,
        attempts: int,
        error: str | None = None,
    ) -> None:
        delivery = Delivery(
            subscriber=subscriber.name,
            channel=subscriber.channel,
            alert_id=ref,
            alert_key="brief",
            revision=1,
            status=status,
            attempts=attempts,
            error=error,
            updated_at=datetime.now(UTC),
        )
        await self.store.put_delivery(delivery)
