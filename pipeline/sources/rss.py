"""News portals' RSS 2.0 and Atom feeds: one stream per feed, asked with ``If-None-Match`` /
``If-Modified-Since`` so an unchanged feed costs a 304."""

from __future__ import annotations

import hashlib
import html
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

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
    lenient,
)
from pipeline.sources.ids import uri_id
from pipeline.text.normalize import normalize_text
from pipeline.validation import MAX_FUTURE
from schemas.posts import MAX_TEXT_CHARS, RawPost
from schemas.vocab import Platform

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
TAG = re.compile(r"<[^>]+>")


def plain_text(markup: str | None) -> str:
    """Feed and toot bodies are HTML: tags out, entities decoded, whitespace folded."""
    if not markup:
        return ""
    text = re.sub(r"<\s*(br|/p|/div|/li)\s*/?>", "\n", markup, flags=re.I)
    return "\n".join(
        " ".join(line.split()) for line in html.unescape(TAG.sub(" ", text)).splitlines()
    ).strip()


ARTICLE_HEADROOM = 1_000
"""Characters a cut article leaves free under the limit: masking can lengthen a text (a short name becomes
"[NAMA]"), and the enriched post has the same limit."""


def article_text(title: str, body: str) -> str:
    """Title and body; an article longer than the contract's limit is cut at a word and marked "…": its
    opening says what it is about, and refused whole it was lost."""
    text = normalize_text("\n\n".join(part for part in (title, body) if part))
    if len(text) <= MAX_TEXT_CHARS:
        return text
    keep = MAX_TEXT_CHARS - ARTICLE_HEADROOM
    cut = text[: keep - 2]
    space = cut.rfind(" ", keep - 200)
    return (cut[:space] if space > 0 else cut).rstrip() + " …"


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    text = text.strip()
    try:
        stamp = parsedate_to_datetime(text)  # RSS: RFC 822
    except (TypeError, ValueError):
        try:
            stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))  # Atom: RFC 3339
        except ValueError:
            return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


class Feed:
    def __init__(self, url: str) -> None:
        self.url = url
        self.key = "feed:" + hashlib.sha256(url.encode()).hexdigest()[:16]
        self.description = url

    def __repr__(self) -> str:
        return f"Feed({self.url!r})"  # names the feed when one of its items is skipped

    def start(self, cursor: Cursor | None, since: datetime) -> Request:
        cursor = cursor or {}
        headers = {}
        if cursor.get("etag"):
            headers["if-none-match"] = cursor["etag"]
        if cursor.get("last_modified"):
            headers["if-modified-since"] = cursor["last_modified"]
        return Request(self.url, headers=headers, context={"since": since.isoformat(), "cursor": cursor})

    def parse(self, request: Request, response: Response) -> Page:
        cursor: Cursor = dict(request.context["cursor"])
        if response.status == 304:
            return Page(cursor=cursor)
        try:
            root = ET.fromstring(response.body)
        except ET.ParseError as exc:
            raise SourceError(f"news: {self.url} is not an RSS or Atom feed: {exc}") from None
        items = [self._rss(i) for i in root.iter("item")] + [self._atom(e) for e in root.iter(f"{ATOM}entry")]
        since = datetime.fromisoformat(request.context["since"])
        newest = datetime.fromisoformat(cursor["newest"]) if cursor.get("newest") else None
        seen = set(cursor.get("newest_ids", []))
        # Items already sent are those before the newest one sent, and those at its time that were sent.
        fresh = [
            p
            for p in items
            if p is None
            or (
                p.created_at >= since
                and (newest is None or p.created_at > newest or (p.created_at == newest and p.id not in seen))
            )
        ]
        posts, skipped = collect(fresh)
        # Only over items the gate takes: one dated more than MAX_FUTURE ahead is refused, and were it
        # the newest, every later item would be taken for sent.
        horizon = datetime.now(UTC) + MAX_FUTURE
        latest = max((p.created_at for p in posts if p.created_at <= horizon), default=None)
        if latest is not None and (newest is None or latest >= newest):
            ids = {p.id for p in posts if p.created_at == latest} | (seen if latest == newest else set())
            cursor["newest"], cursor["newest_ids"] = latest.isoformat(), sorted(ids)
        for header, name in (("etag", "etag"), ("last-modified", "last_modified")):
            if response.headers.get(header):
                cursor[name] = response.headers[header]
        return Page(posts, cursor=cursor, skipped=skipped + len(items) - len(fresh))

    def _post(self, identity: str | None, **fields: Any) -> RawPost | None:
        if not identity:
            return None
        title, body = fields.pop("title"), fields.pop("body")
        return build_post(
            {
                "id": uri_id(identity),
                "platform": Platform.NEWS,
                "text": article_text(title, body),
                "feed": self.url,
                **{k: v for k, v in fields.items() if v},
            }
        )

    @lenient
    def _rss(self, item: ET.Element) -> RawPost | None:
        link = (item.findtext("link") or "").strip() or None
        author = item.findtext(f"{DC}creator") or item.findtext("author")
        return self._post(
            (item.findtext("guid") or "").strip() or link,
            title=plain_text(item.findtext("title")),
            body=plain_text(item.findtext(f"{CONTENT}encoded") or item.findtext("description")),
            created_at=_date(item.findtext("pubDate") or item.findtext(f"{DC}date")),
            url=link,
            author={"name": author.strip()} if author else None,
            category=[c.text.strip() for c in item.findall("category") if c.text] or None,
        )

    @lenient
    def _atom(self, entry: ET.Element) -> RawPost | None:
        link = next(
            (e.get("href") for e in entry.findall(f"{ATOM}link") if e.get("rel", "alternate") == "alternate"),
            None,
        )
        author = entry.findtext(f"{ATOM}author/{ATOM}name")
        return self._post(
            (entry.findtext(f"{ATOM}id") or "").strip() or link,
            title=plain_text(entry.findtext(f"{ATOM}title")),
            body=plain_text(entry.findtext(f"{ATOM}content") or entry.findtext(f"{ATOM}summary")),
            created_at=_date(entry.findtext(f"{ATOM}published") or entry.findtext(f"{ATOM}updated")),
            url=link,
            author={"name": author.strip()} if author else None,
        )


def read_feeds_file(path: Path) -> list[str]:
    """A URL per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SourceError(f"news: PANTAU_RSS_FEEDS_FILE {path}: {exc.strerror or exc}") from None
    urls = [line.split("#", 1)[0].strip() for line in lines]
    return [url for url in urls if url]


def rss_connector(settings: Settings) -> Connector:
    if settings.rss_feeds_file is None:
        raise SourceError("rss: PANTAU_RSS_FEEDS_FILE is not set (a file with one feed URL per line)")
    feeds = read_feeds_file(settings.rss_feeds_file)
    if not feeds:
        raise SourceError(f"rss: {settings.rss_feeds_file} lists no feeds")
    return Connector(name="rss", platform=Platform.NEWS, streams=[Feed(url) for url in feeds])
