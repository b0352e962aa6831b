"""Index template, feature detection and an at-least-once bulk indexer for Elasticsearch.

Features differ between clusters (the embedded noida-db has no ILM and no Indonesian stemmer):
they are probed, never assumed, and the template is rendered for what the cluster has.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, Literal

from elasticsearch import ApiError, AsyncElasticsearch, Elasticsearch, TransportError
from pydantic import BaseModel

from pipeline import metrics
from pipeline.settings import Settings

log = logging.getLogger(__name__)

TEMPLATES = files("pipeline.sinks").joinpath("templates")
"""Index templates, package data: ``{prefix}`` and ``{topics_index}`` are filled in from the settings."""
TEMPLATE_PATH = TEMPLATES.joinpath("posts-template.json")
TOPICS_TEMPLATE_PATH = TEMPLATES.joinpath("topics-template.json")
RESPONSES_TEMPLATE_PATH = TEMPLATES.joinpath("responses-template.json")
ALERTS_TEMPLATE_PATH = TEMPLATES.joinpath("alerts-template.json")
DELIVERIES_TEMPLATE_PATH = TEMPLATES.joinpath("deliveries-template.json")
RETRYABLE_STATUS = {429, 500, 502, 503, 504}
ACCESS_STATUS = {401, 403}
"""Credentials or privileges: for the whole request or for one index's items, only an operator fixes them."""
RETRY_ON_CONFLICT = 3


class ClusterFeatures(BaseModel):
    version: str
    indonesian_stemmer: bool
    ilm: bool


def client_options(settings: Settings, url: str) -> dict[str, Any]:
    options: dict[str, Any] = {"hosts": [url], "request_timeout": 30}
    if settings.es_api_key:
        options["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username:
        password = settings.es_password.get_secret_value() if settings.es_password else ""
        options["basic_auth"] = (settings.es_username, password)
    if settings.es_ca_certs:
        options["ca_certs"] = str(settings.es_ca_certs)
    if not settings.es_verify_certs:
        options["verify_certs"] = False
    return options


def sync_client(settings: Settings, url: str) -> Elasticsearch:
    return Elasticsearch(**client_options(settings, url))


def async_client(settings: Settings, url: str) -> AsyncElasticsearch:
    return AsyncElasticsearch(**client_options(settings, url))


def index_name(settings: Settings, created_at: datetime) -> str:
    """Monthly index by the post's own time (UTC), so a replay always lands in the same index."""
    return f"{settings.index_prefix}-{created_at.astimezone(UTC):%Y.%m}"


def detect_features(es: Elasticsearch) -> ClusterFeatures:
    version = str(es.info()["version"]["number"])
    try:
        tokens = es.indices.analyze(
            body={
                "tokenizer": "standard",
                "filter": [{"type": "stemmer", "language": "indonesian"}],
                "text": "pelayanannya",
            }
        )["tokens"]
        stemmer = bool(tokens) and tokens[0]["token"] != "pelayanannya"
    except ApiError:
        stemmer = False
    try:
        es.ilm.get_status()
        ilm = True
    except ApiError:
        ilm = False
    return ClusterFeatures(version=version, indonesian_stemmer=stemmer, ilm=ilm)


def render_template(settings: Settings, features: ClusterFeatures) -> dict[str, Any]:
    raw = TEMPLATE_PATH.read_text(encoding="utf-8")
    raw = raw.replace("{prefix}", settings.index_prefix)
    template: dict[str, Any] = json.loads(raw)
    index_settings = template["template"]["settings"]
    index_settings["number_of_shards"] = settings.index_shards
    index_settings["number_of_replicas"] = settings.index_replicas
    index_settings["refresh_interval"] = settings.index_refresh_interval
    analyzer = index_settings["analysis"]["analyzer"]["pantau_text"]
    if not features.indonesian_stemmer:
        analyzer["filter"] = [f for f in analyzer["filter"] if f != "id_stem"]
        del index_settings["analysis"]["filter"]["id_stem"]
    if features.ilm and settings.index_retention_days:
        index_settings["index.lifecycle.name"] = ilm_policy_name(settings)
    return template


def ilm_policy_name(settings: Settings) -> str:
    return f"{settings.index_prefix}-retention"


def apply_index_template(settings: Settings, es: Elasticsearch) -> ClusterFeatures:
    """Install (or update) the ILM policy where supported and the posts index template."""
    features = detect_features(es)
    if features.ilm and settings.index_retention_days:
        es.ilm.put_lifecycle(
            name=ilm_policy_name(settings),
            policy={
                "phases": {
                    "hot": {"actions": {}},
                    "delete": {"min_age": f"{settings.index_retention_days}d", "actions": {"delete": {}}},
                }
            },
        )
    body = render_template(settings, features)
    es.indices.put_index_template(name=settings.index_prefix, **body)
    es.indices.put_index_template(name=settings.topics_index, **render_topics_template(settings))
    es.indices.put_index_template(name=settings.responses_index, **render_responses_template(settings))
    for index, template in render_alert_templates(settings).items():
        es.indices.put_index_template(name=index, **template)
    return features


def render_topics_template(settings: Settings) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(
        TOPICS_TEMPLATE_PATH.read_text(encoding="utf-8").replace("{topics_index}", settings.topics_index)
    )
    template["template"]["settings"]["number_of_replicas"] = settings.index_replicas
    return template


def render_responses_template(settings: Settings) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(
        RESPONSES_TEMPLATE_PATH.read_text(encoding="utf-8").replace(
            "{responses_index}", settings.responses_index
        )
    )
    template["template"]["settings"]["number_of_replicas"] = settings.index_replicas
    return template


def render_alert_templates(settings: Settings) -> dict[str, dict[str, Any]]:
    """Index → template: alerts (one document per alert id) and deliveries (attempts, silences, state)."""
    out: dict[str, dict[str, Any]] = {}
    for index, path in (
        (settings.alerts_index, ALERTS_TEMPLATE_PATH),
        (settings.deliveries_index, DELIVERIES_TEMPLATE_PATH),
    ):
        raw = path.read_text(encoding="utf-8")
        raw = raw.replace("{alerts_index}", index).replace("{deliveries_index}", index)
        template: dict[str, Any] = json.loads(raw)
        template["template"]["settings"]["number_of_replicas"] = settings.index_replicas
        out[index] = template
    return out


class IndexAction(BaseModel):
    """One bulk operation: ``index`` (whole document), ``upsert`` (create, or merge into the stored one),
    ``update`` (merge into an existing document) or ``delete``.

    Posts are upserted: the topics agent adds ``topic`` to a post's document later, and a redelivered post
    written with ``index`` would remove it again. A field a reprocessed post no longer has stays as it was.
    """

    key: str
    index: str
    source: dict[str, Any] | None = None
    op: Literal["index", "upsert", "update", "delete"] = "index"

    @property
    def bulk_op(self) -> str:
        """The operation's name in the bulk request and in its response items."""
        return "update" if self.op == "upsert" else self.op

    def operations(self) -> list[dict[str, Any]]:
        target: dict[str, Any] = {"_index": self.index, "_id": self.key}
        if self.bulk_op == "update":  # the index and topics agents may update one post at the same moment
            target["retry_on_conflict"] = RETRY_ON_CONFLICT
        header = {self.bulk_op: target}
        if self.op == "delete":
            return [header]
        if self.op == "upsert":
            return [header, {"doc": self.source or {}, "doc_as_upsert": True}]
        return [header, {"doc": self.source} if self.op == "update" else self.source or {}]


class IndexFailure(BaseModel):
    key: str
    status: int
    reason: str


class BulkIndexer:
    """Bulk-index batches so that every action ends indexed or, refused for good, as a failure.

    What the caller gets back (for the dead-letter topic) is only what Elasticsearch refused because of
    the document itself: a 4xx item (mapping conflict, bad value), a request refused as a whole as too
    large (413) or unparsable (400), narrowed down by halving to the one action it refuses, or an item that
    kept failing with 5xx for ``max_attempts`` requests. Everything about the cluster rather than the
    document is waited out with exponential back-off, however long it takes: connection errors, 5xx and
    429 for the whole request, 429 items (back-pressure), 401/403 for the request or for items
    (credentials, privileges), and any other refusal of the whole request (a 404 for a wrong URL, a proxy's
    400 page), which only an operator can fix. So nothing is dead-lettered because the cluster was down or
    misconfigured, and the call returns only when the caller may commit the Kafka offsets.
    """

    def __init__(self, es: AsyncElasticsearch, backoff: float, backoff_max: float, max_attempts: int) -> None:
        self.es = es
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.max_attempts = max_attempts

    async def close(self) -> None:
        await self.es.close()

    async def index(self, actions: list[IndexAction]) -> list[IndexFailure]:
        pending = list(actions)
        failures: list[IndexFailure] = []
        item_failures = [0] * len(pending)  # 5xx answers per action, by position in ``actions``
        position = list(range(len(pending)))
        delay = self.backoff
        attempt = 0
        while pending:
            attempt += 1
            retry: list[int] = []  # indices into ``pending``
            try:
                operations: list[dict[str, Any]] = []
                for action in pending:
                    operations.extend(action.operations())
                with metrics.timed(metrics.BULK_SECONDS):
                    response = await self.es.bulk(operations=operations)
            except ApiError as exc:
                status = int(exc.status_code)
                # Elasticsearch answers a request over http.max_content_length with 413 and no body; a 400
                # counts only with Elasticsearch's error object (a proxy's 400 page is the setup's fault)
                if status == 413 or (status == 400 and _error_of(exc) is not None):
                    if len(pending) == 1:
                        return [
                            *failures,
                            IndexFailure(key=pending[0].key, status=status, reason=_reason(exc)),
                        ]
                    half = len(pending) // 2
                    return failures + await self.index(pending[:half]) + await self.index(pending[half:])
                metrics.es_retry(_retry_reason(status))
                level = logging.WARNING if status in RETRYABLE_STATUS else logging.ERROR
                log.log(
                    level, "bulk request refused (%s), attempt %d; retrying in %.1fs", exc, attempt, delay
                )
                retry = list(range(len(pending)))
            except TransportError as exc:
                metrics.es_retry("connection")
                log.warning("bulk request failed (%s), attempt %d; retrying in %.1fs", exc, attempt, delay)
                retry = list(range(len(pending)))
            else:
                for i, (action, item) in enumerate(zip(pending, response["items"], strict=True)):
                    result = item.get(action.bulk_op, {})
                    status = int(result.get("status", 500))
                    if status < 300 or (status == 404 and action.op == "delete"):
                        continue
                    error = result.get("error", {})
                    reason = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
                    if status == 429 or status in ACCESS_STATUS:
                        metrics.es_retry(_retry_reason(status))
                        if status in ACCESS_STATUS:
                            log.error("%s refused for %s: %s", action.index, action.key, reason)
                        retry.append(i)
                        continue
                    if status in RETRYABLE_STATUS:
                        item_failures[position[i]] += 1
                        if item_failures[position[i]] < self.max_attempts:
                            metrics.es_retry("5xx")
                            retry.append(i)
                            continue
                        reason = f"{reason} (after {self.max_attempts} attempts)"
                    failures.append(IndexFailure(key=action.key, status=status, reason=reason))
                if retry:
                    log.warning(
                        "%d documents got 429/5xx, attempt %d; retrying in %.1fs", len(retry), attempt, delay
                    )
            if not retry:
                break
            pending, position = [pending[i] for i in retry], [position[i] for i in retry]
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)
        return failures


def _retry_reason(status: int) -> str:
    """The ``reason`` label of a retry: what kept the cluster from taking the documents."""
    if status == 429:
        return "429"
    if status in ACCESS_STATUS:
        return "access"
    return "5xx" if status >= 500 else "request"


def _error_of(exc: ApiError) -> dict[str, Any] | None:
    """The ``error`` object of an Elasticsearch error response, None for anyone else's (a proxy's page)."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    return error if isinstance(error, dict) else None


def _reason(exc: ApiError) -> str:
    error = _error_of(exc)
    if error is not None:
        return f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
    return str(exc.message)
