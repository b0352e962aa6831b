"""What a connector is: plain classes that turn one API answer into posts, the next request and a cursor.

A connector never does HTTP, Kafka or file I/O itself (the runner does), so each platform's mapping is
tested with the platform's documented answers and no servers, like the worker's stages.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec, Protocol

from pydantic import ValidationError

from pipeline.validation import describe_validation_error
from schemas.posts import LANGUAGE_TAG, RawPost
from schemas.vocab import Platform

log = logging.getLogger("pantau.ingest")

Cursor = dict[str, Any]
"""Where a stream resumes (since_id, page token, min_id, ETag …); JSON-serialisable, platform-specific."""


@dataclass(frozen=True)
class Request:
    url: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    cost: int = 1
    """Quota units the request uses (YouTube counts units per method; the others count requests)."""
    context: Mapping[str, Any] = field(default_factory=dict)
    """What the parser needs to know about the request (the cursor it started from, the video asked)."""
    accept: frozenset[int] = frozenset()
    """Error statuses the parser reads itself instead of failing the round (a 404 for a status that is
    gone)."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Page:
    """One answer, read: the posts it holds, what to ask next, and the cursor to save once the broker has
    acknowledged these posts (and those of ``follow``)."""

    posts: list[RawPost] = field(default_factory=list)
    next: Request | None = None
    """The next page of the same stream; None when the stream is caught up."""
    follow: list[Request] = field(default_factory=list)
    """Requests for the items of this page (a video's comments): done before the cursor is saved."""
    cursor: Cursor | None = None
    """None keeps the cursor as it was."""
    skipped: int = 0
    """Items the page held that are not posts (a reblog, an item with no text)."""
    deleted: list[str] = field(default_factory=list)
    """Keys (``platform:id``) of posts the platform says are gone: each is sent as a tombstone, which the
    pipeline turns into a document delete, before the cursor is saved."""


class Stream(Protocol):
    """One query, feed, tag or page of a platform, with a cursor of its own."""

    key: str
    """Cursor key, unique within the connector and stable across runs (e.g. ``x:recent:<hash>``)."""
    description: str
    """The query as the platform gets it: logged at start."""

    def start(self, cursor: Cursor | None, since: datetime) -> Request | None:
        """The first request of a round: from the cursor, or back to ``since`` on the first run."""
        ...

    def parse(self, request: Request, response: Response) -> Page: ...


@dataclass(frozen=True)
class Connector:
    name: str
    """``x``, ``rss`` …: names the cursors, the metrics file and the quota."""
    platform: Platform
    streams: list[Stream]
    auth: Mapping[str, str] = field(default_factory=dict)
    """Headers sent with every request (a bearer token); never logged."""
    credential: str = ""
    """The setting that holds the credential, named when the platform refuses it."""


class SourceError(Exception):
    """The platform cannot be read now (refused credentials, an unexpected answer): one line for the user."""


class QuotaSpent(SourceError):
    """The platform's (or our) budget for today is used: the round ends; it is no error of the operator."""


class AccessDenied(SourceError):
    """401/403: retrying will not help until someone fixes the credential or the access level."""


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def language(value: object) -> str | None:
    """A platform's language field as ``RawPost.lang`` takes it, or None (then detected): an empty or odd
    value (``""``, a private-use ``x-…`` tag) is a missing hint, not a reason to lose the post."""
    return value if isinstance(value, str) and re.fullmatch(LANGUAGE_TAG, value) else None


def build_post(fields: dict[str, Any]) -> RawPost | None:
    """A post from a platform's item, or None (logged) where the item breaks the contract: one odd item
    must not stop a connector."""
    try:
        return RawPost.model_validate(fields)
    except ValidationError as exc:
        log.warning(
            "%s:%s skipped: %s", fields.get("platform"), fields.get("id"), describe_validation_error(exc)
        )
        return None


P = ParamSpec("P")

SHAPE_ERRORS = (AttributeError, TypeError, KeyError, ValueError, IndexError, RecursionError)
"""What reading JSON not shaped as documented raises (a string where an object was, a missing key,
nesting too deep to parse)."""


def lenient(build: Callable[P, RawPost | None]) -> Callable[P, RawPost | None]:
    """A platform's item mapping that skips (logged, None) an item not shaped as documented instead of
    failing its whole page: one odd item must not hold its stream back every round."""

    @functools.wraps(build)
    def read(*args: P.args, **kwargs: P.kwargs) -> RawPost | None:
        try:
            return build(*args, **kwargs)
        except SHAPE_ERRORS as exc:
            log.warning(  # with the traceback: a bug in the mapping must not pass for odd items
                "%s: an item not shaped as documented was skipped (%s: %s): %s",
                build.__name__,
                type(exc).__name__,
                exc,
                str(args[0] if args else kwargs)[:200],
                exc_info=True,
            )
            return None

    return read


def objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a list the API documents as a list of objects; anything else in it is logged and
    left out. A value that is no list is an unexpected answer (``TypeError``)."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    kept = [item for item in value if isinstance(item, dict)]
    if len(kept) < len(value):
        log.warning("%d items that are not objects were left out", len(value) - len(kept))
    return kept


def member(value: Any, name: str) -> dict[str, Any]:
    """A member the API documents as an object (a thread's ``snippet``, a comment's ``replies``): absent is
    empty, and anything else is logged and read as empty, so one odd item does not fail its page."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        log.warning("%s is not an object, left out: %s", name, str(value)[:200])
        return {}
    return value


def nested_objects(parent: dict[str, Any], key: str, inner: str) -> list[dict[str, Any]]:
    """The objects listed at ``parent[key][inner]`` (Graph ``replies.data``, YouTube ``replies.comments``):
    absent is none, and a holder or list not shaped as documented is logged and read as none."""
    holder = member(parent.get(key), key)
    listed = holder.get(inner)
    if listed is None:
        return []
    if not isinstance(listed, list):
        log.warning("%s.%s is not a list, left out: %s", key, inner, str(listed)[:200])
        return []
    return objects(listed)


def collect(items: list[RawPost | None]) -> tuple[list[RawPost], int]:
    posts = [p for p in items if p is not None]
    return posts, len(items) - len(posts)
