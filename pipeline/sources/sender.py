"""Posts into the raw topic with key ``platform:id``, through the one gate every raw post passes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka import KafkaProducer

from pipeline.validation import Rejected, check_message_size, validate_raw_post
from schemas.posts import RawPost

log = logging.getLogger("pantau.ingest")


@dataclass
class Sent:
    sent: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason) of posts the pipeline would refuse: not sent, logged."""


def encode_post(post: RawPost) -> tuple[str, bytes]:
    """Key and value of a validated post, as ``pantau produce`` writes them (raises ``Rejected`` when the
    message would be over the limit)."""
    value = post.model_dump_json(exclude_none=True).encode()
    check_message_size(value)
    return post.key, value


def send_posts(producer: KafkaProducer, topic: str, posts: list[RawPost]) -> Sent:
    """Send and wait for the broker's acknowledgement of every post (raises if one is not taken)."""
    outcome = Sent()
    futures = []
    for post in posts:
        try:
            key, value = encode_post(validate_raw_post(post.model_dump(mode="json", exclude_none=True)))
        except Rejected as exc:
            outcome.rejected.append((post.key, exc.reason))
            log.warning("not sent: %s: %s", post.key, exc.reason)
            continue
        futures.append(producer.send(topic, key=key.encode(), value=value))
    producer.flush()
    for future in futures:
        future.get(timeout=60)
    outcome.sent = len(futures)
    return outcome


def send_tombstones(producer: KafkaProducer, topic: str, keys: list[str]) -> int:
    """A tombstone (no value) per post key the platform reports gone, acknowledged by the broker; the
    worker turns each into a document delete and a tombstone on the enriched topic."""
    unique = list(dict.fromkeys(keys))
    futures = [producer.send(topic, key=key.encode(), value=None) for key in unique]
    producer.flush()
    for future in futures:
        future.get(timeout=60)
    for key in unique:
        log.info("%s is gone: sent for removal", key)
    return len(unique)
