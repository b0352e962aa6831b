"""Mastodon tag timelines (``GET /api/v1/timelines/tag/:hashtag``), read forward with ``min_id`` through
the ``Link`` header's ``prev`` page. A status is keyed by its URI, the same on every instance."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
)
from pipeline.sources.ids import uri_id
from pipeline.sources.rss import plain_text
from schemas.posts import RawPost
from schemas.vocab import Platform

PAGE_SIZE = 40
LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')


def snowflake_at(moment: datetime) -> str:
    """The smallest Mastodon id of a moment (ids are milliseconds since the epoch shifted left 16 bits):
    a first run asks ``min_id`` of the horizon."""
    return str(int(moment.timestamp() * 1000) << 16)


def link_targets(header: str | None) -> dict[str, str]:
    return {rel: url for url, rel in LINK.findall(header or "")}


class TagTimeline:
    def __init__(self, api_base: str, tag: str) -> None:
        self.base = api_base.rstrip("/")
        self.tag = tag
        host = urlsplit(self.base).hostname or self.base
        self.key = f"tag:{tag}@{host}"
        self.description = f"#{tag} on {host}"

    def _request(self, min_id: str) -> Request:
        return Request(
            f"{self.base}/api/v1/timelines/tag/{self.tag}", {"min_id": min_id, "limit": str(PAGE_SIZE)}
        )

    def start(self, cursor: Cursor | None, since: datetime) -> Request:
        return self._request(str((cursor or {}).get("min_id") or snowflake_at(since)))

    def parse(self, request: Request, response: Response) -> Page:
        statuses = response.json()
        if not isinstance(statuses, list):
            raise SourceError(f"mastodon: unexpected answer for #{self.tag}: {str(statuses)[:200]}")
        if not statuses:
            return Page(cursor={"min_id": request.params["min_id"]})
        originals = [s for s in statuses if isinstance(s, dict) and not s.get("reblog")]
        posts, skipped = collect([status_post(s) for s in originals])
        prev = link_targets(response.headers.get("link")).get("prev")
        linked = parse_qs(urlsplit(prev).query).get("min_id", []) if prev else []
        newest = linked[0] if linked else max((str(s["id"]) for s in statuses), key=lambda i: (len(i), i))
        return Page(
            posts,
            self._request(newest),
            cursor={"min_id": newest},
            skipped=skipped + len(statuses) - len(originals),
        )


def status_post(status: dict[str, Any]) -> RawPost | None:
    account = status.get("account") or {}
    text = plain_text(status.get("content"))
    if status.get("spoiler_text"):
        text = f"{status['spoiler_text']}\n\n{text}"
    fields: dict[str, Any] = {
        "id": uri_id(status.get("uri") or status.get("url") or ""),
        "platform": Platform.MASTODON,
        "text": text,
        "created_at": status.get("created_at"),
        "author": {
            "id": account.get("url") or account.get("id"),
            "handle": "@" + account["acct"] if account.get("acct") else None,
            "name": account.get("display_name") or None,
        },
        "url": status.get("url") or status.get("uri"),
        "lang": status.get("language"),
        "metrics": {
            "likes": status.get("favourites_count"),
            "replies": status.get("replies_count"),
            "shares": status.get("reblogs_count"),
        },
        "uri": status.get("uri"),
    }
    if status.get("in_reply_to_id"):  # an instance-local id: kept, but not the parent's key
        fields["in_reply_to_local_id"] = str(status["in_reply_to_id"])
    if not status.get("uri"):
        return None
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
