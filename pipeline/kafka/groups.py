"""Who consumes and how far behind: the workers' consumer group as the broker describes it.

``pantau status`` and ``pantau produce`` read the group from Kafka itself, so the answer is the same
whether the workers run under the embedded supervisor, systemd, Compose or Kubernetes.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from pydantic import BaseModel

from pipeline.kafka.config import kafka_python_config
from pipeline.settings import Settings


class _GroupsAdmin(KafkaAdminClient):
    """kafka-python's admin client, leaving out the group's authorised operations: Tansu reports operation
    bits kafka-python does not know (15), asked for or not, and kafka-python then fails on the answer."""

    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.pop("authorized_operations", None)
        return obj


class GroupMember(BaseModel):
    member_id: str
    client_id: str
    host: str
    assignment: dict[str, list[int]] | None
    """Topic → partitions; None where the broker does not report assignments (the embedded Tansu)."""


class PartitionLag(BaseModel):
    topic: str
    partition: int
    committed: int | None
    """The group's committed offset; None before its first commit (lag then counts from the log start)."""
    end: int
    lag: int


class GroupInfo(BaseModel):
    group: str
    state: str
    members: list[GroupMember]
    partitions: list[PartitionLag]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def lag_by_topic(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in self.partitions:
            totals[p.topic] = totals.get(p.topic, 0) + p.lag
        return totals


def consumed_topics(settings: Settings) -> list[str]:
    """The topics the workers' group reads (and commits offsets for)."""
    return [
        settings.topic_raw,
        settings.topic_enriched,
        settings.topic_assignments,
        settings.topic_topics_input,
    ]


def _admin(settings: Settings, bootstrap: str) -> _GroupsAdmin:
    return _GroupsAdmin(**(kafka_python_config(settings, bootstrap) | {"request_timeout_ms": 10_000}))


def _describe(admin: _GroupsAdmin, group_id: str) -> dict[str, Any]:
    group = admin.describe_groups([group_id]).get(group_id)
    if group is None:
        raise KafkaError(f"the broker did not describe group {group_id}")
    if group.get("error") and "GroupIdNotFound" not in group["error"]:  # not found: nobody joined yet
        raise KafkaError(group["error"])
    return dict(group)


def consumer_group_members(settings: Settings, bootstrap: str) -> int:
    """How many consumers are in the workers' group (``settings.app_id``, Faust's group id) now. Raises
    ``KafkaError`` where the broker cannot say."""
    admin = _admin(settings, bootstrap)
    try:
        return len(_describe(admin, settings.app_id).get("members") or [])
    finally:
        admin.close()


def describe_group(settings: Settings, bootstrap: str) -> GroupInfo:
    """Members, their assignments, and the lag of every partition the group reads (committed offset
    against the end of the log). Raises ``KafkaError`` where the broker cannot say."""
    admin = _admin(settings, bootstrap)
    try:
        group = _describe(admin, settings.app_id)
        members = [_member(m) for m in group.get("members") or []]
        committed = admin.list_group_offsets(settings.app_id).get(settings.app_id, {})
        present = set(admin.list_topics())
        names = [t for t in consumed_topics(settings) if t in present]
        partitions = [
            TopicPartition(str(t.get("name", t.get("topic"))), int(p["partition_index"]))
            for t in admin.describe_topics(names)
            for p in t["partitions"]
        ]
        ends = (
            admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions}) if partitions else {}
        )
        missing = [tp for tp in partitions if tp not in committed]
        starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in missing}) if missing else {}
    finally:
        admin.close()
    lags = []
    for tp in sorted(partitions):
        end = int(ends[tp].offset)
        done = committed.get(tp)
        at = int(done.offset) if done is not None and done.offset >= 0 else None
        since = at if at is not None else int(starts[tp].offset) if tp in starts else 0
        # an end offset below the committed one is the embedded broker's (Tansu's) approximation
        lags.append(
            PartitionLag(
                topic=tp.topic, partition=tp.partition, committed=at, end=end, lag=max(0, end - since)
            )
        )
    return GroupInfo(
        group=settings.app_id,
        state=str(group.get("group_state") or ("Dead" if not members else "unknown")),
        members=members,
        partitions=lags,
    )


def _member(raw: dict[str, Any]) -> GroupMember:
    return GroupMember(
        member_id=str(raw.get("member_id", "")),
        client_id=str(raw.get("client_id") or ""),
        host=str(raw.get("client_host") or "").lstrip("/"),
        assignment=parse_assignment(raw.get("member_assignment")),
    )


def parse_assignment(value: object) -> dict[str, list[int]] | None:
    """Topic → partitions from a member's assignment as kafka-python hands it over (decoded consumer
    protocol, as an object or its dict); None when the broker sent none (Tansu sends empty bytes)."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if not isinstance(value, dict) or not isinstance(value.get("assigned_partitions"), list):
        return None
    topics: dict[str, list[int]] = {}
    for entry in value["assigned_partitions"]:
        if isinstance(entry, dict):
            topics.setdefault(str(entry["topic"]), []).extend(int(p) for p in entry["partitions"])
    return {topic: sorted(parts) for topic, parts in sorted(topics.items())}
