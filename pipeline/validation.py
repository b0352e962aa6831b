"""The one gate every raw post passes: decode, validate against the contract, normalise, bound."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from pipeline.text.normalize import normalize_text
from schemas.posts import MAX_MESSAGE_BYTES, MAX_NESTING, MAX_TEXT_CHARS, RawPost, Stage
from schemas.vocab import Platform

MAX_FUTURE = timedelta(days=1)
"""How far ahead of this machine's clock ``created_at`` may be: platforms stamp posts when they are made,
so a later date is a broken source (a local time sent as UTC is off by hours, not days). Such a post would
sit in the future on every dashboard and, in topic discovery, expire the whole window."""


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No social-media post is older: an earlier ``created_at`` is a broken source (a zero timestamp reads as
1970), and would create a monthly index for a month no dashboard shows."""


class Rejected(Exception):
    """A message the pipeline will not process; ``stage`` and ``reason`` go to the dead-letter topic."""

    def __init__(self, stage: Stage, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def nesting(value: Any) -> int:
    """Depth of nested lists and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def validate_raw_post(data: Mapping[str, Any]) -> RawPost:
    if nesting(data) > MAX_NESTING:
        raise Rejected("validate", f"nested deeper than {MAX_NESTING} levels")
    try:
        post = RawPost.model_validate(data)
    except ValidationError as exc:
        raise Rejected("validate", describe_validation_error(exc)) from None
    try:  # what the pipeline will send on must be writable: e.g. a lone surrogate (\udc80) is not
        post.model_dump_json()
    except PydanticSerializationError as exc:
        raise Rejected("validate", f"cannot be written as JSON: {exc}") from None
    if post.created_at > datetime.now(UTC) + MAX_FUTURE:
        raise Rejected(
            "validate", f"created_at: {post.created_at.isoformat()} is more than a day in the future"
        )
    if post.created_at < EARLIEST:
        raise Rejected("validate", f"created_at: {post.created_at.isoformat()} is before {EARLIEST:%Y}")
    text = normalize_text(post.text)
    if not text:
        raise Rejected("validate", "text: empty after normalisation")
    if len(text) > MAX_TEXT_CHARS:
        raise Rejected(
            "validate", f"text: {len(text)} characters after normalisation, limit {MAX_TEXT_CHARS}"
        )
    post.text = text
    return post


def check_message_size(value: bytes) -> None:
    if len(value) > MAX_MESSAGE_BYTES:
        raise Rejected("decode", f"message of {len(value):,} bytes, limit {MAX_MESSAGE_BYTES:,}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose key repeats is refused, not read as its last value: parsers disagree on which
    value wins (first or last), so a repeated ``id`` or ``text`` could mean one post to a producer's
    checks and another to the pipeline."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(
                f"not JSON the pipeline accepts: the key {key[:100]!r} appears twice in one object"
            )
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name} is not a JSON number")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"not JSON the pipeline accepts: the number {literal[:40]} is out of range")
    return value


def parse_json(text: str) -> Any:
    """``json.loads`` with every way it fails as ``ValueError``: nesting too deep for the parser raises
    ``RecursionError``, which would otherwise escape the handlers of bad input. Standard JSON only: no
    NaN or Infinity (Python accepts them, Elasticsearch does not), nor a number too large for a float
    (read as infinity), no repeated keys."""
    try:
        return json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite
        )
    except json.JSONDecodeError as exc:
        # as json words it ("… starting at: line 1 column 9"): some of its messages end in "at"
        raise ValueError(f"not JSON: {exc.msg}: line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValueError("not JSON the parser accepts: nested too deeply") from None


POST_KEY = re.compile(r"(?P<platform>[a-z]+):[A-Za-z0-9_.:@-]{1,256}")
"""Matched whole (``fullmatch``): ``$`` would also let a key end in a newline."""


def deleted_post_key(key: bytes | None, value: bytes | None) -> str | None:
    """The post a tombstone deletes: a message with no value whose key is a post key (``platform:id`` of
    a known platform). Connectors send one where the platform says the post was deleted."""
    if value is not None or not key:
        return None
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return None
    match = POST_KEY.fullmatch(text)
    if match is None or match.group("platform") not in {p.value for p in Platform}:
        return None
    return text


def decode_raw_post(value: bytes | None) -> RawPost:
    if value is None:
        raise Rejected("decode", "empty message (tombstone)")
    check_message_size(value)
    try:
        data = parse_json(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Rejected("decode", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:
        raise Rejected("decode", str(exc)) from None
    if not isinstance(data, dict):
        raise Rejected("decode", f"expected a JSON object, got {type(data).__name__}")
    return validate_raw_post(data)
