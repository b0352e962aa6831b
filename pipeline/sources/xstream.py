"""X filtered stream (``pantau ingest x --stream``): the gazetteer's queries as stream rules (tagged
``pantau:…``, within the 1,000 rules a stream allows, other rules left alone), posts as they are written,
and a recent-search round before every connection so that a disconnect loses nothing.

The stream cannot resume, so the last streamed id is the cursor (``stream``): after a disconnect every
recent-search query asks ``since_id`` of one minute before that post, and what was streamed twice carries
the same key."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from pipeline.sources.connector import SHAPE_ERRORS, AccessDenied, SourceError
from pipeline.sources.http import reset_delay
from pipeline.sources.runner import Runner
from pipeline.sources.sender import send_posts
from pipeline.sources.x import TWEET_FIELDS, expansions, tweet_post
from schemas.posts import RawPost

log = logging.getLogger("pantau.ingest")

RULES_LIMIT = 1000
TAG_PREFIX = "pantau:"
X_EPOCH_MS = 1288834974657
"""Post ids are milliseconds since this moment, shifted left 22 bits."""
GAP_MARGIN = timedelta(minutes=1)
STREAM_KEY = "stream"
SAVE_EVERY = 5.0
"""Seconds between saves of the stream's cursor (the gap margin covers what came in between)."""
READ_TIMEOUT = 60.0
"""X sends a keep-alive every 20 seconds: a minute of silence is a dead connection."""


def rule_tag(query: str) -> str:
    return TAG_PREFIX + hashlib.sha256(query.encode()).hexdigest()[:16]


def id_at(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000 - X_EPOCH_MS) << 22)


def id_time(post_id: str) -> datetime:
    return datetime.fromtimestamp(((int(post_id) >> 22) + X_EPOCH_MS) / 1000, UTC)


@dataclass
class RulePlan:
    add: list[dict[str, str]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """Queries left out: the stream's rule limit is reached (other applications' rules count too)."""


def plan_rules(existing: list[dict[str, Any]], queries: list[str], limit: int = RULES_LIMIT) -> RulePlan:
    """What to delete and add so that our rules are exactly ``queries``; rules not tagged ``pantau:`` are
    someone else's and stay."""
    ours = {str(r["tag"]): r for r in existing if str(r.get("tag", "")).startswith(TAG_PREFIX)}
    room = max(limit - (len(existing) - len(ours)), 0)
    wanted = list(dict.fromkeys(queries))
    allowed = {rule_tag(q): q for q in wanted[:room]}
    plan = RulePlan(dropped=wanted[room:])
    plan.delete = [str(r["id"]) for tag, r in ours.items() if allowed.get(tag) != r.get("value")]
    plan.add = [{"value": q, "tag": t} for t, q in allowed.items() if ours.get(t, {}).get("value") != q]
    return plan


class FilteredStream:
    def __init__(self, runner: Runner, api_base: str, token: str, queries: list[str], stop: threading.Event):
        self.runner = runner
        self.base = api_base.rstrip("/")
        self.queries = queries
        self.stop = stop
        self.client = httpx.Client(
            headers={"authorization": f"Bearer {token}", "user-agent": "pantau-banten/1"},
            timeout=httpx.Timeout(30.0, read=READ_TIMEOUT),
        )
        self.last_id: str | None = None
        self.saved_at = 0.0

    def close(self) -> None:
        self.client.close()

    def _check(self, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            response.read()
            where = f"{self.base}/2/tweets/search/stream"
            raise AccessDenied(
                f"x: {response.status_code} {response.reason_phrase} from {where}: "
                f"check PANTAU_X_BEARER_TOKEN and the app's access level (the filtered stream needs a higher "
                f"tier than recent search) ({' '.join(response.text.split())[:200]})"
            )

    def sync_rules(self) -> None:
        url = f"{self.base}/2/tweets/search/stream/rules"
        answer = self.client.get(url)
        self._check(answer)
        answer.raise_for_status()
        plan = plan_rules(answer.json().get("data") or [], self.queries)
        if plan.delete:
            done = self.client.post(url, json={"delete": {"ids": plan.delete}})
            self._check(done)
            done.raise_for_status()
        if plan.add:
            done = self.client.post(url, json={"add": plan.add})
            self._check(done)
            done.raise_for_status()
            for error in done.json().get("errors") or []:
                log.error("x: a stream rule was refused: %s", error)
        for query in plan.dropped:
            log.warning("x: no room for this rule within %d: %s", RULES_LIMIT, query)
        log.info(
            "x: stream rules: %d added, %d deleted, %d left out",
            len(plan.add),
            len(plan.delete),
            len(plan.dropped),
        )

    def gap_fill(self) -> None:
        """A recent-search round, each query from one minute before the last streamed post at the latest."""
        runner = self.runner
        if runner.loaded is None:
            runner.loaded = runner.cursors.load()
            runner.metrics.cursors = dict(runner.loaded)
        self.last_id = self.last_id or runner.loaded.get(STREAM_KEY, {}).get("last_id")
        if self.last_id:
            floor = id_at(id_time(self.last_id) - GAP_MARGIN)
            for stream in runner.connector.streams:
                cursor = runner.loaded.get(stream.key) or {}
                if not cursor.get("next_token") and int(cursor.get("since_id") or 0) < int(floor):
                    runner.loaded[stream.key] = {"since_id": floor}
        runner.run_round()

    def consume(self) -> None:
        params = {
            "tweet.fields": TWEET_FIELDS,
            "expansions": "author_id,geo.place_id",
            "user.fields": "username,name",
            "place.fields": "full_name,geo",
        }
        metrics = self.runner.metrics
        with self.client.stream("GET", f"{self.base}/2/tweets/search/stream", params=params) as response:
            self._check(response)
            if response.status_code == 429:
                raise RateLimited(
                    reset_delay({k.lower(): v for k, v in response.headers.items()}, time.time())
                )
            if response.status_code != 200:
                response.read()
                raise SourceError(f"x: stream answered {response.status_code}: {response.text[:200]}")
            metrics.state = "streaming"
            self.runner.save_metrics()
            for line in bounded_lines(response.iter_bytes()):
                if self.stop.is_set():
                    return
                if line is None:
                    log.warning("x: a stream line longer than %d bytes was skipped", MAX_LINE_BYTES)
                    metrics.rejected += 1
                    continue
                if not line.strip():
                    continue  # keep-alive
                try:
                    post = stream_post(line)
                except SHAPE_ERRORS as exc:
                    # one bad line must not end the stream (a reconnect would skip to "now")
                    log.warning("x: stream line not read (%s: %s): %r", type(exc).__name__, exc, line[:300])
                    metrics.rejected += 1
                    continue
                if post is None:
                    continue
                outcome = send_posts(self.runner.producer, self.runner.settings.topic_raw, [post])
                metrics.fetched += 1
                metrics.sent += outcome.sent
                metrics.rejected += len(outcome.rejected)
                metrics.last_poll = datetime.now(UTC)
                if self.last_id is None or int(post.id) > int(self.last_id):
                    self.last_id = post.id
                if time.monotonic() - self.saved_at >= SAVE_EVERY:
                    self._save()
        self._save()

    def _save(self) -> None:
        if self.last_id is None or self.runner.loaded is None:
            return
        self.runner.cursors.save(STREAM_KEY, {"last_id": self.last_id})
        self.runner.loaded[STREAM_KEY] = {"last_id": self.last_id}
        self.runner.metrics.cursors[STREAM_KEY] = {"last_id": self.last_id}
        self.saved_at = time.monotonic()
        self.runner.save_metrics()

    def run(self) -> None:
        """Rules, then (recent-search round, stream) until stopped; back-off as X asks: network errors from
        0.25 s up to 16 s, HTTP errors from 5 s up to 320 s, 429 from a minute (or the reset) up."""
        try:
            self.sync_rules()
        except httpx.HTTPError as exc:
            raise SourceError(f"x: stream rules: {exc}") from None
        network = 0.25
        http = 5.0
        limited = 60.0
        while not self.stop.is_set():
            try:
                self.gap_fill()
                self.consume()
                network, http = 0.25, 5.0  # a connection that ended normally: start over
                wait = 0.0
            except AccessDenied:
                raise
            except RateLimited as exc:
                wait = max(exc.wait or 0.0, limited)
                limited = min(limited * 2, 900.0)
            except (httpx.TransportError, httpx.StreamError) as exc:
                log.warning("x: stream connection lost (%s); reconnecting", type(exc).__name__)
                wait, network = network, min(network + 0.25, 16.0)
            except (SourceError, httpx.HTTPStatusError) as exc:
                log.warning("%s", exc)
                wait, http = http, min(http * 2, 320.0)
            self._save()
            if wait:
                self.runner.metrics.state = "waiting"
                self.runner.save_metrics()
                self.stop.wait(wait)
        self.runner.metrics.state = "stopped"
        self.runner.save_metrics()


MAX_LINE_BYTES = 1024 * 1024
"""The longest stream line read: a tweet with its expansions is a few kilobytes."""


def bounded_lines(chunks: Iterable[bytes], limit: int | None = None) -> Iterator[str | None]:
    """The stream's lines (``\n`` or ``\r\n``), decoded as UTF-8 with bad bytes replaced; None in place of
    a line longer than ``limit`` bytes (default ``MAX_LINE_BYTES``; the ``\r`` of ``\r\n`` not counted),
    which is skipped without being held."""
    limit = MAX_LINE_BYTES if limit is None else limit
    held = bytearray()
    too_long = False
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            carriage = chunk[end - 1 : end] == b"\r" if end > start else held.endswith(b"\r")
            if too_long or len(held) + end - start - carriage > limit:
                yield None
            else:
                held += chunk[start:end]
                yield _decoded(held)
            held.clear()
            too_long = False
            start = end + 1
        if not too_long:
            if len(held) + len(chunk) - start > limit + 1:  # + 1: the \r of a \r\n split across chunks
                too_long = True
                held.clear()
            else:
                held += chunk[start:]
    if held and not too_long and len(held) - held.endswith(b"\r") <= limit:
        yield _decoded(held)
    elif held or too_long:
        yield None


def _decoded(line: bytearray) -> str:
    return (line[:-1] if line.endswith(b"\r") else line).decode("utf-8", "replace")


def stream_post(line: str) -> RawPost | None:
    """The post of one stream line; None for a system message (logged). Raises on a line that is not a
    stream message (not JSON, or not shaped like one)."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    if "data" not in message:
        log.warning("x: stream says: %s", line[:300])
        return None
    if not isinstance(message["data"], dict):
        raise ValueError("'data' is not an object")
    return tweet_post(message["data"], *expansions(message))


class RateLimited(Exception):
    def __init__(self, wait: float | None) -> None:
        super().__init__(f"429, reset in {wait}")
        self.wait = wait
