"""Who consumes: the members of the workers' consumer group, so that `pantau produce` can warn when none."""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from pipeline.kafka.config import kafka_python_config
from pipeline.settings import Settings


class _GroupsAdmin(KafkaAdminClient):
    """kafka-python's admin client, leaving out the group's authorised operations: Tansu reports operation
    bits kafka-python does not know (15), asked for or not, and kafka-python then fails on the answer."""

    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.pop("authorized_operations", None)
        return obj


def consumer_group_members(settings: Settings, bootstrap: str) -> int:
    """How many consumers are in the workers' group (``settings.app_id``, Faust's group id) now. Raises
    ``KafkaError`` where the broker cannot say."""
    admin = _GroupsAdmin(**(kafka_python_config(settings, bootstrap) | {"request_timeout_ms": 10_000}))
    try:
        groups = admin.describe_groups([settings.app_id])
    finally:
        admin.close()
    group = groups.get(settings.app_id)
    if group is None:
        raise KafkaError(f"the broker did not describe group {settings.app_id}")
    if group.get("error") and "GroupIdNotFound" not in group["error"]:  # not found: nobody joined yet
        raise KafkaError(group["error"])
    return len(group.get("members") or [])
