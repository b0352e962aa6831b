"""Mastodon tag timelines (``GET /api/v1/timelines/tag/:hashtag``), read forward with ``min_id`` through
the ``Link`` header's ``prev`` page. A status is keyed by its URI, the same on every instance.

A reply names its parent only by the instance's own id, so each reply's thread is read
(``GET /api/v1/statuses/:id/context``): the parent's and the thread's first status's URIs become
``reply_to_id`` and ``conversation_id``, keys the responsiveness stage can link.

Statuses sent within the horizon (at most ``RECENT_LIMIT`` per tag, in the cursor) are checked for
deletion, ``CHECK_BATCH`` a round in turn: ``GET /api/v1/statuses?id[]=…`` (Mastodon 4.3+) shows which are
still there, and one that is missing is gone only when ``GET /api/v1/statuses/:id`` answers 404."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from pipeline.settings import Settings
from pipeline.sources.connector import (
    Connector,
    Cursor,
    Page,
    Request,
    Response,
    SourceError,
    build_post,
    collect,
    language,
    lenient,
)
from pipeline.sources.ids import uri_id
from pipeline.sources.rss import plain_text
from schemas.posts import RawPost
from schemas.vocab import Platform

log = logging.getLogger("pantau.ingest")

PAGE_SIZE = 40
LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')
RECENT_LIMIT = 200
"""Statuses per tag whose deletion is checked: the newest, within the horizon."""
CHECK_BATCH = 20
"""Ids per ``GET /api/v1/statuses`` (one request a tag and round)."""
GONE = frozenset({404, 410})


def snowflake_at(moment: datetime) -> str:
    """The smallest Mastodon id of a moment (ids are milliseconds since the epoch shifted left 16 bits):
    a first run asks ``min_id`` of the horizon."""
    return str(int(moment.timestamp() * 1000) << 16)


def link_targets(header: str | None) -> dict[str, str]:
    return {rel: url for url, rel in LINK.findall(header or "")}


Recent = list[list[str]]
"""``[local id, post id, created_at]`` of the statuses sent, oldest first."""


def _keep(recent: Recent, since: datetime) -> Recent:
    """The entries still within the horizon, the newest ``RECENT_LIMIT``."""
    kept = []
    for entry in recent:
        try:
            if len(entry) == 3 and datetime.fromisoformat(entry[2].replace("Z", "+00:00")) >= since:
                kept.append(entry)
        except (TypeError, ValueError):
            continue
    return kept[-RECENT_LIMIT:]


def _number(local_id: str) -> int:
    return int(local_id) if local_id.isdigit() else 0


class TagTimeline:
    def __init__(self, api_base: str, tag: str) -> None:
        self.base = api_base.rstrip("/")
        self.tag = tag
        host = urlsplit(self.base).hostname or self.base
        self.key = f"tag:{tag}@{host}"
        self.description = f"#{tag} on {host}"
        self.batch_missing = False

    def _request(self, min_id: str, state: dict[str, Any]) -> Request:
        return Request(
            f"{self.base}/api/v1/timelines/tag/{self.tag}",
            {"min_id": min_id, "limit": str(PAGE_SIZE)},
            context={"kind": "timeline", **state},
        )

    def start(self, cursor: Cursor | None, since: datetime) -> Request:
        cursor = cursor or {}
        state = {
            "recent": _keep(list(cursor.get("recent") or []), since),
            "checked_to": str(cursor.get("checked_to") or ""),
        }
        return self._request(str(cursor.get("min_id") or snowflake_at(since)), state)

    def parse(self, request: Request, response: Response) -> Page:
        kind = request.context["kind"]
        if kind == "context":
            return self._parse_context(request, response)
        if kind == "check":
            return self._parse_check(request, response)
        if kind == "status":
            gone = response.status in GONE
            return Page(deleted=[request.context["key"]] if gone else [])
        statuses = response.json()
        if not isinstance(statuses, list):
            raise SourceError(f"mastodon: unexpected answer for #{self.tag}: {str(statuses)[:200]}")
        recent: Recent = list(request.context["recent"])
        checked_to = str(request.context["checked_to"])
        if not statuses:  # caught up: check a batch of the statuses sent for deletion
            cursor: Cursor = {"min_id": request.params["min_id"], "recent": recent, "checked_to": checked_to}
            return Page(next=self._check(request.params["min_id"], recent, checked_to), cursor=cursor)
        originals = [s for s in statuses if isinstance(s, dict) and not s.get("reblog")]
        direct = [s for s in originals if not s.get("in_reply_to_id")]
        replies = [s for s in originals if s.get("in_reply_to_id")]
        posts, skipped = collect([status_post(s) for s in direct])
        follow = [self._context(s) for s in replies if s.get("id") and s.get("uri")]
        for status in sorted(originals, key=lambda s: (len(str(s.get("id"))), str(s.get("id")))):
            if status.get("id") and status.get("uri"):
                recent.append([str(status["id"]), uri_id(status["uri"]), str(status.get("created_at") or "")])
        recent = recent[-RECENT_LIMIT:]
        prev = link_targets(response.headers.get("link")).get("prev")
        linked = parse_qs(urlsplit(prev).query).get("min_id", []) if prev else []
        newest = linked[0] if linked else max((str(s["id"]) for s in statuses), key=lambda i: (len(i), i))
        state = {"recent": recent, "checked_to": checked_to}
        return Page(
            posts,
            self._request(newest, state),
            follow,
            cursor={"min_id": newest, **state},
            skipped=skipped + len(statuses) - len(originals) + len(replies) - len(follow),
        )

    def _context(self, status: dict[str, Any]) -> Request:
        return Request(
            f"{self.base}/api/v1/statuses/{status['id']}/context",
            context={"kind": "context", "status": status},
            accept=GONE,
        )

    def _parse_context(self, request: Request, response: Response) -> Page:
        status = request.context["status"]
        if response.status in GONE:  # deleted since the timeline was read: nothing to send
            return Page(skipped=1)
        body = response.json()
        ancestors = [a for a in (body.get("ancestors") or []) if isinstance(a, dict) and a.get("uri")]
        parent = next((a for a in ancestors if str(a.get("id")) == str(status["in_reply_to_id"])), None)
        thread: dict[str, str | None] = {"reply_to_id": None, "conversation_id": None}
        if parent is not None:
            thread["reply_to_id"] = uri_id(parent["uri"])
            thread["conversation_id"] = uri_id(ancestors[0]["uri"])
        posts, skipped = collect([status_post(status, **thread)])
        return Page(posts, skipped=skipped)

    def _check(self, min_id: str, recent: Recent, checked_to: str) -> Request | None:
        """The next ``CHECK_BATCH`` statuses after the last one checked, wrapping round."""
        if not recent or self.batch_missing:
            return None
        after = [r for r in recent if _number(r[0]) > _number(checked_to)]
        batch = (after + [r for r in recent if r not in after])[:CHECK_BATCH]
        query = urlencode([("id[]", local) for local, _, _ in batch])
        context = {"kind": "check", "batch": batch, "recent": recent, "min_id": min_id}
        return Request(f"{self.base}/api/v1/statuses?{query}", context=context, accept=GONE | {422})

    def _parse_check(self, request: Request, response: Response) -> Page:
        context = request.context
        batch: Recent = context["batch"]
        if response.status >= 400:  # before Mastodon 4.3 there is no batch lookup
            log.warning(
                "mastodon: %s has no GET /api/v1/statuses (Mastodon 4.3+): deletions are not checked",
                self.base,
            )
            self.batch_missing = True
            return Page()
        answer = response.json()
        if not isinstance(answer, list):
            raise SourceError(f"mastodon: unexpected answer to a status lookup: {str(answer)[:200]}")
        present = {str(s.get("id")) for s in answer if isinstance(s, dict)}
        missing = {local: post for local, post, _ in batch if local not in present}
        # Missing from the list is no proof: only a 404 for the status itself removes the post.
        follow = [
            Request(
                f"{self.base}/api/v1/statuses/{local}",
                context={"kind": "status", "key": f"mastodon:{post}"},
                accept=GONE,
            )
            for local, post in missing.items()
        ]
        cursor = {
            "min_id": context["min_id"],
            "recent": [r for r in context["recent"] if r[0] not in missing],
            "checked_to": batch[-1][0],
        }
        return Page(follow=follow, cursor=cursor)


@lenient
def status_post(
    status: dict[str, Any], reply_to_id: str | None = None, conversation_id: str | None = None
) -> RawPost | None:
    """A status as a post; ``conversation_id`` is its own id unless it is a reply (then the thread's first
    status, when the instance showed it)."""
    account = status.get("account") or {}
    text = plain_text(status.get("content"))
    if status.get("spoiler_text"):
        text = f"{status['spoiler_text']}\n\n{text}"
    if not status.get("uri"):
        return None
    own = uri_id(status["uri"])
    fields: dict[str, Any] = {
        "id": own,
        "platform": Platform.MASTODON,
        "text": text,
        "created_at": status.get("created_at"),
        "author": {
            "id": account.get("url") or account.get("id"),
            "handle": "@" + account["acct"] if account.get("acct") else None,
            "name": account.get("display_name") or None,
        },
        "url": status.get("url") or status.get("uri"),
        "lang": language(status.get("language")),
        "reply_to_id": reply_to_id,
        "conversation_id": conversation_id or (None if status.get("in_reply_to_id") else own),
        "metrics": {
            "likes": status.get("favourites_count"),
            "replies": status.get("replies_count"),
            "shares": status.get("reblogs_count"),
        },
        "uri": status.get("uri"),
    }
    if status.get("in_reply_to_id"):  # the instance's own id of the parent, kept for reference
        fields["in_reply_to_local_id"] = str(status["in_reply_to_id"])
    return build_post(fields)


def mastodon_connector(settings: Settings, tags: list[str]) -> Connector:
    auth = {}
    if settings.mastodon_token is not None:
        auth["authorization"] = f"Bearer {settings.mastodon_token.get_secret_value()}"
    return Connector(
        name="mastodon",
        platform=Platform.MASTODON,
        streams=[TagTimeline(settings.mastodon_api_base, tag) for tag in tags],
        auth=auth,
        credential="PANTAU_MASTODON_TOKEN",
    )
