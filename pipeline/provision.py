"""Prepare a cluster before a worker consumes: topics, ILM policy, index templates, and the mappings of the
indices that already exist.

The posts and topics mappings are ``dynamic: strict``, and a template shapes only the indices created after
it. A field that a newer pipeline writes would be refused by the current month's index, and every post
dead-lettered. So the template's fields are also put into every existing posts index and the topics index
(``PUT <index>/_mapping``, properties only; ``dynamic: strict`` stays). Adding a field is always allowed.
Changing a field's type is not, because Elasticsearch cannot re-type indexed data. Such a change stops
provisioning, naming the index, the field and both types, before the worker consumes anything, so no post
is dead-lettered for it.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import ApiError, Elasticsearch
from pydantic import BaseModel
from rich.console import Console

from pipeline.drift import Drift, index_drift, topic_drift
from pipeline.embedded.process import ServerError
from pipeline.embedded.stack import Endpoints
from pipeline.kafka.topics import TopicInfo, ensure_topics
from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import (
    ClusterFeatures,
    _reason,
    apply_index_template,
    render_alert_templates,
    render_responses_template,
    render_template,
    render_topics_template,
    sync_client,
)
from pipeline.wording import plural


class MappingConflict(BaseModel):
    """A field whose type in an existing index differs from the template's."""

    index: str
    field: str
    current: str
    wanted: str


class MappingUpdate(BaseModel):
    """An existing index given the template's fields; ``added`` are those it did not have."""

    index: str
    added: list[str]


class Provisioned(BaseModel):
    topics: list[TopicInfo]
    features: ClusterFeatures
    mappings: list[MappingUpdate]
    drift: list[Drift] = []

    def summary(self, settings: Settings) -> str:
        """What ``pantau up``, ``worker`` and ``demo`` print."""
        lines = [
            "topics: "
            + ", ".join(f"{t.name} ({plural(t.partitions or 0, 'partition')})" for t in self.topics),
            f"index template {settings.index_prefix}-* → alias {settings.index_alias} "
            f"(ES {self.features.version}; Indonesian stemmer {_on(self.features.indonesian_stemmer)}; "
            f"ILM {_on(self.features.ilm)})",
        ]
        lines += [f"mapping of {m.index}: added {', '.join(m.added)}" for m in self.mappings if m.added]
        lines += [f"warning: {d.describe()}" for d in self.drift]
        return "\n".join(lines)


class IncompatibleMapping(ServerError):
    """An existing index cannot take the template's mapping; only reindexing it (or changing the template
    back) fixes that, so the worker does not start."""


def prepare_cluster(settings: Settings, endpoints: Endpoints, console: Console | None = None) -> Provisioned:
    """Topics with their final partition count, ILM policy (if the cluster has ILM), index templates, and
    the template's fields in every existing posts index and the topics index."""
    topics = ensure_topics(settings, endpoints.kafka)
    es = sync_client(settings, endpoints.elasticsearch)
    try:
        features = apply_index_template(settings, es)
        posts = render_template(settings, features)["template"]["mappings"]["properties"]
        topic_fields = render_topics_template(settings)["template"]["mappings"]["properties"]
        mappings = update_mappings(es, f"{settings.index_prefix}-*", posts)
        if es.indices.exists(index=f"{settings.index_prefix}-*"):  # a dynamic setting: existing indices too
            es.indices.put_settings(
                index=f"{settings.index_prefix}-*",
                settings={"index": {"refresh_interval": settings.index_refresh_interval}},
            )
        mappings += update_mappings(es, settings.topics_index, topic_fields)
        response_fields = render_responses_template(settings)["template"]["mappings"]["properties"]
        mappings += update_mappings(es, settings.responses_index, response_fields)
        alert_templates = render_alert_templates(settings)
        for index, template in alert_templates.items():
            mappings += update_mappings(es, index, template["template"]["mappings"]["properties"])
        for index in (settings.topics_index, settings.responses_index, *alert_templates):
            ensure_index(es, index)
        drift = topic_drift(settings, topics, endpoints.kafka) + index_drift(settings, es)
    finally:
        es.close()
    provisioned = Provisioned(topics=topics, features=features, mappings=mappings, drift=drift)
    if console is not None:
        console.print(provisioned.summary(settings), soft_wrap=True)
    return provisioned


def ensure_index(es: Elasticsearch, index: str) -> None:
    """Create a one-index store (from its template) before its first document: Kibana's data views and the
    panels over it fail on an index that is not there, and a quiet stream may go days without an alert."""
    if not es.indices.exists(index=index):
        es.options(ignore_status=400).indices.create(index=index)  # 400: another worker created it first


def update_mappings(es: Elasticsearch, indices: str, properties: dict[str, Any]) -> list[MappingUpdate]:
    """Put ``properties`` into every existing index matching ``indices`` (none is fine).

    Type changes are found first, for all indices at once, so the error lists every conflict rather than
    the first; anything else Elasticsearch refuses (a parameter it cannot update) is reported with its
    reason.
    """
    existing = es.indices.get_mapping(index=indices, ignore_unavailable=True, allow_no_indices=True).body
    wanted = field_types(properties)
    current = {
        index: field_types(body.get("mappings", {}).get("properties", {}))
        for index, body in sorted(existing.items())
    }
    conflicts = [
        MappingConflict(index=index, field=name, current=types[name], wanted=kind)
        for index, types in current.items()
        for name, kind in wanted.items()
        if name in types and types[name] != kind
    ]
    if conflicts:
        raise IncompatibleMapping(
            "the index template changes the type of fields existing indices already have: "
            + "; ".join(
                f"{c.index}: {c.field} is {c.current}, the template says {c.wanted}" for c in conflicts
            )
            + ". Elasticsearch cannot change a field's type in place: reindex those indices into ones "
            "created from the new template, or keep the old type in the template"
        )
    updates: list[MappingUpdate] = []
    for index, types in current.items():
        try:
            es.indices.put_mapping(index=index, properties=properties)
        except ApiError as exc:
            if exc.status_code != 400:
                raise
            raise IncompatibleMapping(
                f"{index}: Elasticsearch refused the template's mapping: {_reason(exc)}"
            ) from None
        updates.append(MappingUpdate(index=index, added=[name for name in wanted if name not in types]))
    return updates


def field_types(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted field path → mapping type, object fields and multi-fields (``text.raw``) included; a field
    with sub-properties and no type is an ``object``, as Elasticsearch reads it."""
    types: dict[str, str] = {}
    for name, spec in properties.items():
        path = prefix + name
        types[path] = str(spec.get("type", "object"))
        for nested in ("properties", "fields"):
            if isinstance(spec.get(nested), dict):
                types.update(field_types(spec[nested], path + "."))
    return types


def _on(available: bool) -> str:
    return "on" if available else "not available"
