"""What the alerts keep in Elasticsearch besides the alerts: the delivery log, silences, queued and
pending notifications, a mark per alert revision the delivery agent took, and a copy of the detector's
state, all in ``pantau-deliveries``.

On the embedded stack a broker restart loses every topic, Faust's changelogs included; this index is
what lets ``pantau down`` then ``pantau up`` resume without re-paging anyone.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from elasticsearch import AsyncElasticsearch, ConflictError, NotFoundError
from pydantic import AwareDatetime, BaseModel

from pipeline.embedded.stack import Endpoints
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import async_client
from schemas.alerts import Alert, AlertKind
from schemas.vocab import Agency, Region

DeliveryStatus = Literal["pending", "sending", "sent", "failed", "queued", "silenced", "stale"]
"""``pending``: taken for a subscriber, waiting ``group_wait`` (restored at start, since the broker may
have lost the message); ``queued``: held for quiet hours or a digest."""


def message_id(subscriber: str, alert_id: str, revision: int) -> str:
    """The ``webhook-id``: the same for one (subscriber, alert id, revision), so a receiver can drop a
    repeat, and a new one for an escalation or a resolve."""
    digest = hashlib.sha256(f"{subscriber}|{alert_id}|{revision}".encode()).hexdigest()
    return f"msg_{digest[:24]}"


class Delivery(BaseModel):
    subscriber: str
    channel: str
    alert_id: str
    alert_key: str
    revision: int
    status: DeliveryStatus
    attempts: int = 0
    error: str | None = None
    alert: str | None = None
    """The alert's JSON: what a queued or pending notification sends, and what a restarted worker
    rebuilds its cooldowns and reminders from."""
    repeat: int = 0
    """Reminders sent of this alert revision (``repeat_interval``): the next one is ``_r{repeat + 1}``."""
    updated_at: AwareDatetime

    @property
    def was_sent(self) -> bool:
        """The subscriber has been told (a later reminder's failure does not undo that)."""
        return self.status == "sent" or self.repeat > 0

    @property
    def id(self) -> str:
        return message_id(self.subscriber, self.alert_id, self.revision)


class Silence(BaseModel):
    """No notification for alerts it matches (every given matcher), from ``starts_at`` to ``ends_at``."""

    id: str
    agency: Agency | None = None
    region: Region | None = None
    kind: AlertKind | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str | None = None

    @staticmethod
    def new_id() -> str:
        return "sil_" + secrets.token_hex(4)

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, alert: Alert) -> bool:
        if self.agency is not None and self.agency not in alert.agencies:
            return False
        if self.region is not None and alert.region != self.region:
            return False
        return self.kind is None or alert.kind == self.kind

    def describe(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (("agency", self.agency), ("region", self.region), ("kind", self.kind))
            if value
        ]
        return ", ".join(parts)


class AlertStore:
    """The ``pantau-deliveries`` index, for the worker (async) and the CLI (``asyncio.run``)."""

    def __init__(
        self, settings: Settings, endpoints: Endpoints | None = None, url: str | None = None
    ) -> None:
        self.settings = settings
        self.index = settings.deliveries_index
        self.url = url or (endpoints.elasticsearch if endpoints else None)
        self._es: AsyncElasticsearch | None = None

    @property
    def es(self) -> AsyncElasticsearch:
        if self._es is None:
            assert self.url is not None
            self._es = async_client(self.settings, self.url)
        return self._es

    async def close(self) -> None:
        if self._es is not None:
            await self._es.close()
            self._es = None

    async def _search(self, query: dict[str, Any], size: int = 10_000) -> list[dict[str, Any]]:
        if not await self.es.indices.exists(index=self.index):
            return []
        await self.es.indices.refresh(index=self.index)
        response = await self.es.search(index=self.index, query=query, size=size)
        return [hit["_source"] | {"_id": hit["_id"]} for hit in response["hits"]["hits"]]

    # -- detector state ----------------------------------------------------------------------------

    async def read_state(self) -> list[tuple[bytes, bytes]]:
        hits = await self._search({"term": {"type": "state"}})
        return [(bytes.fromhex(h["entry"]), h["value"].encode()) for h in hits if h.get("value")]

    async def write_state(self, entries: dict[bytes, bytes | None]) -> None:
        operations: list[dict[str, Any]] = []
        now = datetime.now(UTC).isoformat()
        for key, value in entries.items():
            doc_id = "state:" + key.hex()
            if value is None:
                operations.append({"delete": {"_index": self.index, "_id": doc_id}})
            else:
                operations.append({"index": {"_index": self.index, "_id": doc_id}})
                operations.append(
                    {"type": "state", "entry": key.hex(), "value": value.decode(), "updated_at": now}
                )
        if operations:
            response = await self.es.bulk(operations=operations)
            if response.get("errors"):
                bad = [i for i in response["items"] if next(iter(i.values())).get("status", 200) >= 300]
                bad = [i for i in bad if next(iter(i.values())).get("status") != 404]
                if bad:
                    raise RuntimeError(f"state copy refused: {bad[0]}")

    # -- delivery log ------------------------------------------------------------------------------

    async def put_delivery(self, delivery: Delivery) -> None:
        body = delivery.model_dump(mode="json") | {"type": "delivery"}
        await self.es.index(index=self.index, id="delivery:" + delivery.id, document=body)

    async def deliveries(self, ids: list[str]) -> dict[str, Delivery]:
        """The log entries of these message ids that exist."""
        if not ids or not await self.es.indices.exists(index=self.index):
            return {}
        response = await self.es.mget(index=self.index, ids=["delivery:" + i for i in ids])
        found = {}
        for doc in response["docs"]:
            if doc.get("found"):
                source = {k: v for k, v in doc["_source"].items() if k != "type"}
                delivery = Delivery.model_validate(source)
                found[delivery.id] = delivery
        return found

    async def hold(self, delivery: Delivery) -> bool:
        """Log a ``pending`` notification unless the log already has this message (sent, failed...)."""
        body = delivery.model_dump(mode="json") | {"type": "delivery"}
        try:
            await self.es.create(index=self.index, id="delivery:" + delivery.id, document=body)
        except ConflictError:
            return False
        return True

    async def _deliveries(self, *filters: dict[str, Any]) -> list[Delivery]:
        hits = await self._search({"bool": {"filter": [{"term": {"type": "delivery"}}, *filters]}})
        return [
            Delivery.model_validate({k: v for k, v in h.items() if k not in ("type", "_id")}) for h in hits
        ]

    async def queued(self, subscriber: str) -> list[Delivery]:
        return await self._deliveries({"term": {"status": "queued"}}, {"term": {"subscriber": subscriber}})

    async def pending(self) -> list[Delivery]:
        """Notifications taken but not sent when the last worker stopped."""
        return await self._deliveries({"term": {"status": "pending"}})

    async def delivered_since(self, since: datetime) -> list[Delivery]:
        """Log entries of notifications sent (or reminders tried) since ``since``."""
        return [
            d
            for d in await self._deliveries(
                {"terms": {"status": ["sent", "sending", "failed"]}},
                {"range": {"updated_at": {"gte": since.isoformat()}}},
            )
            if d.was_sent
        ]

    async def current_alerts(self, ids: list[str]) -> dict[str, Alert]:
        """The latest revision of these alerts in the alerts index (a resolve the worker never saw
        included)."""
        index = self.settings.alerts_index
        if not ids or not await self.es.indices.exists(index=index):
            return {}
        response = await self.es.mget(index=index, ids=ids)
        return {
            doc["_id"]: Alert.model_validate(doc["_source"]) for doc in response["docs"] if doc.get("found")
        }

    async def recent_deliveries(self, size: int = 200) -> list[Delivery]:
        hits = await self._search({"term": {"type": "delivery"}}, size=size)
        return [
            Delivery.model_validate({k: v for k, v in h.items() if k not in ("type", "_id")}) for h in hits
        ]

    # -- alerts taken by delivery ------------------------------------------------------------------

    async def mark_taken(self, alert: Alert) -> None:
        body = {
            "type": "taken",
            "alert_id": alert.id,
            "revision": alert.revision,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        await self.es.index(index=self.index, id=f"taken:{alert.id}:{alert.revision}", document=body)

    async def untaken_alerts(self, since: datetime) -> list[Alert]:
        """Alerts of the alerts index raised since ``since`` whose latest revision no delivery agent took."""
        index = self.settings.alerts_index
        if not await self.es.indices.exists(index=index):
            return []
        await self.es.indices.refresh(index=index)
        query = {"range": {"raised_at": {"gte": since.isoformat()}}}
        hits = (await self.es.search(index=index, query=query, size=1000))["hits"]["hits"]
        alerts = [Alert.model_validate(h["_source"]) for h in hits]
        if not alerts or not await self.es.indices.exists(index=self.index):
            return alerts
        marks = await self.es.mget(index=self.index, ids=[f"taken:{a.id}:{a.revision}" for a in alerts])
        taken = {doc["_id"] for doc in marks["docs"] if doc.get("found")}
        return [a for a in alerts if f"taken:{a.id}:{a.revision}" not in taken]

    # -- silences ----------------------------------------------------------------------------------

    async def silences(self) -> list[Silence]:
        hits = await self._search({"term": {"type": "silence"}})
        out = []
        for h in hits:
            fields = {k: v for k, v in h.items() if k in Silence.model_fields}
            fields["id"] = h["_id"].removeprefix("silence:")
            out.append(Silence.model_validate(fields))
        return sorted(out, key=lambda s: s.starts_at)

    async def add_silence(self, silence: Silence) -> None:
        body = silence.model_dump(mode="json", exclude={"id"}) | {
            "type": "silence",
            "updated_at": datetime.now(UTC).isoformat(),
        }
        await self.es.index(index=self.index, id="silence:" + silence.id, document=body, refresh=True)

    async def remove_silence(self, silence_id: str) -> bool:
        try:
            await self.es.delete(index=self.index, id="silence:" + silence_id, refresh=True)
        except NotFoundError:
            return False
        return True
