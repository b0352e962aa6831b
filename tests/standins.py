"""Loopback stand-ins for the platforms' APIs, speaking their documented wire formats (response shapes,
paging, rate-limit headers, error answers), for connector tests. Never imported by the runtime."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit


@dataclass
class Seen:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    method: str = "GET"
    body: bytes = b""
    query: str = ""
    """The query string as sent (``params`` keeps the last of repeated names such as ``id[]``)."""


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterator[bytes] | None = None
    """A streamed body (no length; the connection closes after it), written chunk by chunk."""


def json_answer(status: int, body: Any, **headers: str) -> Answer:
    return Answer(status, json.dumps(body).encode(), {"content-type": "application/json", **headers})


class StandIn:
    """A threaded HTTP server answering with ``handle``; records every request; ``faults`` are answered,
    in order, before the real handler; ``hold`` makes requests matching a predicate wait for ``release``."""

    def __init__(self, handle: Callable[[Seen], Answer]) -> None:
        self.handle = handle
        self.seen: list[Seen] = []
        self.faults: list[Answer] = []
        self.hold: Callable[[Seen], bool] | None = None
        self.held = threading.Event()
        self.release = threading.Event()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.do_GET()

            def do_PUT(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                seen = Seen(
                    parts.path,
                    {k: v[-1] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    self.command,
                    self.rfile.read(length) if length else b"",
                    parts.query,
                )
                stand_in.seen.append(seen)
                if stand_in.hold is not None and stand_in.hold(seen):
                    stand_in.held.set()
                    stand_in.release.wait(30)
                answer = stand_in.faults.pop(0) if stand_in.faults else stand_in.handle(seen)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.chunks is not None:
                    self.end_headers()
                    for chunk in answer.chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    return
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]  # a killed client
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rate_limited(reset_in: float = 1.0) -> Answer:
    """X's 429: ``x-rate-limit-*`` headers with the reset as epoch seconds, and its problem body."""
    return json_answer(
        429,
        {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429},
        **{
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(time.time() + reset_in)),
        },
    )


def unavailable() -> Answer:
    return json_answer(503, {"title": "Service Unavailable", "status": 503})


# --- X API v2 ----------------------------------------------------------------------------------------


@dataclass
class Tweet:
    id: int
    text: str
    created_at: datetime
    author_id: str = "2244994945"
    reply_to: int | None = None
    query_word: str = ""
    """The stand-in answers a query with the tweets whose ``query_word`` appears in it."""


class XApi:
    """``GET /2/tweets/search/recent``: newest first, ``since_id`` / ``start_time``, ``max_results`` per
    page, an opaque ``next_token``, ``includes.users``, ``meta.newest_id``; 401 without the token."""

    TOKEN = "test-bearer"

    def __init__(self, tweets: list[Tweet], page_size: int = 3) -> None:
        self.tweets = tweets
        self.page_size = page_size
        self.rules: list[dict[str, str]] = []
        self.connections: list[list[Tweet | bytes]] = []
        """What each stream connection sends: tweets, or raw bytes written as they are (a broken line)."""
        """What each stream connection sends before it ends; the last one then keeps the connection open
        with keep-alives until the stand-in closes."""
        self.connected = 0
        self.deleted: dict[str, str] = {}
        """Post id → reason (``deleted``, ``suspended`` …) the compliance job reports."""
        self.uploaded: list[str] = []
        self.job_polls = 0
        self.written_while_away: dict[int, list[Tweet]] = {}
        """Tweets that become searchable when connection N ends (written while the client reconnects)."""
        self.users = {"2244994945": {"id": "2244994945", "name": "Samsat Banten", "username": "samsatbanten"}}
        self.standin = StandIn(self.handle)

    def handle(self, seen: Seen) -> Answer:
        if seen.path.startswith("/storage/"):  # the signed upload/download URLs: no token
            return self._storage(seen)
        if seen.headers.get("authorization") != f"Bearer {self.TOKEN}":
            return json_answer(
                401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
            )
        if seen.path.startswith("/2/compliance/jobs"):
            return self._compliance(seen)
        if seen.path == "/2/tweets/search/stream/rules":
            return self._rules(seen)
        if seen.path == "/2/tweets/search/stream":
            return self._stream()
        if seen.path != "/2/tweets/search/recent":
            return json_answer(404, {"title": "Not Found Error", "status": 404})
        query = seen.params.get("query", "")
        if len(query) > 512:
            return json_answer(400, {"title": "Invalid Request", "detail": "query too long", "status": 400})
        since_id = int(seen.params.get("since_id", "0"))
        start = seen.params.get("start_time")
        start_at = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None
        matching = sorted(
            (
                t
                for t in self.tweets
                if t.query_word
                and t.query_word in query
                and t.id > since_id
                and (start_at is None or t.created_at >= start_at)
            ),
            key=lambda t: -t.id,
        )
        offset = 0
        if "next_token" in seen.params:
            offset = int(base64.urlsafe_b64decode(seen.params["next_token"]).decode().split(":")[1])
        page = matching[offset : offset + self.page_size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"], meta["oldest_id"] = str(page[0].id), str(page[-1].id)
        if offset + self.page_size < len(matching):
            meta["next_token"] = base64.urlsafe_b64encode(f"o:{offset + self.page_size}".encode()).decode()
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [self._tweet(t) for t in page]
            body["includes"] = {"users": [self.users[t.author_id] for t in page if t.author_id in self.users]}
        return json_answer(
            200,
            body,
            **{
                "x-rate-limit-limit": "450",
                "x-rate-limit-remaining": "449",
                "x-rate-limit-reset": str(int(time.time() + 900)),
            },
        )

    def _compliance(self, seen: Seen) -> Answer:
        """``POST /2/compliance/jobs`` (``created``) and ``GET /2/compliance/jobs/:id`` (``complete`` once the
        ids were uploaded)."""
        status = "created"
        if seen.method == "GET":
            self.job_polls += 1
            status = "complete" if self.uploaded else "in_progress"
        job = {
            "id": "1372966999991541762",
            "type": "tweets",
            "name": "pantau",
            "status": status,
            "resumable": False,
            "created_at": "2026-12-03T09:00:00.000Z",
            "upload_url": f"{self.standin.url}/storage/upload",
            "upload_expires_at": "2026-12-03T09:15:00.000Z",
            "download_url": f"{self.standin.url}/storage/download",
            "download_expires_at": "2026-12-10T09:00:00.000Z",
        }
        return json_answer(200, {"data": job})

    def _storage(self, seen: Seen) -> Answer:
        if "authorization" in seen.headers:
            return Answer(400, b"<Error><Code>InvalidArgument</Code></Error>")
        if seen.method == "PUT":
            self.uploaded = seen.body.decode().split()
            return Answer(200)
        lines = [
            json.dumps(
                {
                    "id": i,
                    "action": "delete",
                    "created_at": "2026-11-20T08:30:00.000Z",
                    "redacted_at": "2026-12-01T00:00:00.000Z",
                    "reason": self.deleted[i],
                }
            )
            for i in self.uploaded
            if i in self.deleted
        ]
        return Answer(200, "\n".join(lines).encode())

    def _rules(self, seen: Seen) -> Answer:
        """``GET``/``POST /2/tweets/search/stream/rules`` (add with ids assigned, delete by id)."""
        if seen.method == "GET":
            body: dict[str, Any] = {
                "meta": {"sent": "2026-12-03T09:00:00.000Z", "result_count": len(self.rules)}
            }
            if self.rules:
                body["data"] = self.rules
            return json_answer(200, body)
        request = json.loads(seen.body)
        if "delete" in request:
            ids = set(request["delete"]["ids"])
            deleted = [r for r in self.rules if r["id"] in ids]
            self.rules = [r for r in self.rules if r["id"] not in ids]
            summary = {"deleted": len(deleted), "not_deleted": len(ids) - len(deleted)}
            return json_answer(200, {"meta": {"sent": "2026-12-03T09:00:00.000Z", "summary": summary}})
        added = []
        for rule in request["add"]:
            added.append({"id": str(1_800_000_000_000_000_000 + len(self.rules) + len(added)), **rule})
        self.rules += added
        summary = {"created": len(added), "not_created": 0, "valid": len(added), "invalid": 0}
        return json_answer(
            201, {"data": added, "meta": {"sent": "2026-12-03T09:00:00.000Z", "summary": summary}}
        )

    def _stream(self) -> Answer:
        """``GET /2/tweets/search/stream``: one JSON object per line (``data``, ``includes``,
        ``matching_rules``), ``\r\n`` keep-alives between."""
        number = self.connected
        self.connected += 1
        sending = self.connections[number] if number < len(self.connections) else []
        last = number >= len(self.connections) - 1
        rules = [{"id": r["id"], "tag": r["tag"]} for r in self.rules[:1]]

        def lines() -> Iterator[bytes]:
            for tweet in sending:
                if isinstance(tweet, bytes):
                    yield tweet
                    continue
                message = {
                    "data": self._tweet(tweet),
                    "includes": {"users": [self.users[tweet.author_id]]},
                    "matching_rules": rules,
                }
                yield json.dumps(message).encode() + b"\r\n"
                yield b"\r\n"
            self.tweets += self.written_while_away.get(number, [])
            while last and not self.standin.release.wait(0.3):
                yield b"\r\n"

        return Answer(200, headers={"content-type": "application/json"}, chunks=lines())

    @staticmethod
    def _tweet(t: Tweet) -> dict[str, Any]:
        tweet: dict[str, Any] = {
            "id": str(t.id),
            "text": t.text,
            "created_at": t.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "author_id": t.author_id,
            "conversation_id": str(t.reply_to or t.id),
            "lang": "in",
            "public_metrics": {
                "retweet_count": 1,
                "reply_count": 2,
                "like_count": 3,
                "quote_count": 1,
                "bookmark_count": 0,
                "impression_count": 40,
            },
            "edit_history_tweet_ids": [str(t.id)],
        }
        if t.reply_to:
            tweet["in_reply_to_user_id"] = "99"
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": str(t.reply_to)}]
        return tweet


# --- Mastodon ----------------------------------------------------------------------------------------


@dataclass
class Toot:
    id: int
    """Instance-local id: milliseconds << 16, as Mastodon makes them."""
    uri: str
    content: str
    created_at: datetime
    tag: str = "banten"
    in_reply_to: int | None = None
    """The parent's instance-local id."""


class MastodonApi:
    """``GET /api/v1/timelines/tag/:hashtag`` with ``min_id``/``max_id``/``limit`` and a ``Link`` header
    whose ``prev`` page carries ``min_id`` (newer) and ``next`` page ``max_id`` (older);
    ``GET /api/v1/statuses/:id/context`` (ancestors oldest first), ``GET /api/v1/statuses/:id`` (404
    ``Record not found`` once deleted) and ``GET /api/v1/statuses?id[]=…`` (Mastodon 4.3: the statuses that
    still exist). A deleted toot is one removed from ``toots``."""

    def __init__(self, toots: list[Toot], page_size: int = 2) -> None:
        self.toots = toots
        self.page_size = page_size
        self.standin = StandIn(self.handle)

    def handle(self, seen: Seen) -> Answer:
        prefix = "/api/v1/timelines/tag/"
        known = {t.id: t for t in self.toots}
        if seen.path == "/api/v1/statuses":
            ids = [int(v) for k, v in parse_qsl(seen.query) if k == "id[]" and v.isdigit()]
            return json_answer(200, [self._status(known[i]) for i in dict.fromkeys(ids) if i in known])
        if seen.path.startswith("/api/v1/statuses/"):
            local, _, what = seen.path.removeprefix("/api/v1/statuses/").partition("/")
            toot = known.get(int(local)) if local.isdigit() else None
            if toot is None:
                return json_answer(404, {"error": "Record not found"})
            if what == "context":
                ancestors = []
                parent = known.get(toot.in_reply_to or -1)
                while parent is not None:
                    ancestors.insert(0, self._status(parent))
                    parent = known.get(parent.in_reply_to or -1)
                return json_answer(200, {"ancestors": ancestors, "descendants": []})
            return json_answer(200, self._status(toot))
        if not seen.path.startswith(prefix):
            return json_answer(404, {"error": "Record not found"})
        tag = seen.path[len(prefix) :]
        limit = min(int(seen.params.get("limit", "20")), self.page_size)
        toots = sorted((t for t in self.toots if t.tag == tag), key=lambda t: t.id)
        if "min_id" in seen.params:  # the page right after min_id, returned newest first
            page = [t for t in toots if t.id > int(seen.params["min_id"])][:limit][::-1]
        else:
            page = [t for t in toots if t.id < int(seen.params.get("max_id", str(1 << 62)))][::-1][:limit]
        headers = {}
        if page:
            base = f"{self.standin.url}{seen.path}"
            headers["link"] = (
                f'<{base}?{urlencode({"max_id": page[-1].id})}>; rel="next", '
                f'<{base}?{urlencode({"min_id": page[0].id})}>; rel="prev"'
            )
        return json_answer(200, [self._status(t) for t in page], **headers)

    @staticmethod
    def _status(t: Toot) -> dict[str, Any]:
        return {
            "id": str(t.id),
            "uri": t.uri,
            "url": t.uri.replace("/users/warga/statuses/", "/@warga/"),
            "created_at": t.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "content": t.content,
            "spoiler_text": "",
            "visibility": "public",
            "language": "id",
            "in_reply_to_id": str(t.in_reply_to) if t.in_reply_to else None,
            "reblog": None,
            "replies_count": 0,
            "reblogs_count": 1,
            "favourites_count": 2,
            "account": {
                "id": "109",
                "username": "warga",
                "acct": "warga@mastodon.example",
                "display_name": "Warga Serang",
                "url": "https://mastodon.example/@warga",
            },
            "tags": [{"name": t.tag, "url": f"https://mastodon.example/tags/{t.tag}"}],
        }


# --- RSS ---------------------------------------------------------------------------------------------


@dataclass
class Article:
    guid: str
    title: str
    description: str
    published: datetime


class NewsFeed:
    """An RSS 2.0 feed with an ``ETag`` and ``Last-Modified``; 304 when the client sends them back."""

    def __init__(self, articles: list[Article]) -> None:
        self.articles = articles
        self.standin = StandIn(self.handle)

    @property
    def etag(self) -> str:
        return '"' + str(abs(hash(tuple(a.guid for a in self.articles)))) + '"'

    def handle(self, seen: Seen) -> Answer:
        newest = max(a.published for a in self.articles)
        modified = format_datetime(newest.astimezone(UTC), usegmt=True)
        if seen.headers.get("if-none-match") == self.etag:
            return Answer(304, b"", {"etag": self.etag})
        items = "".join(
            f'<item><title>{a.title}</title><link>{a.guid}</link><guid isPermaLink="true">{a.guid}</guid>'
            f"<description><![CDATA[<p>{a.description}</p>]]></description>"
            f"<dc:creator>Redaksi</dc:creator><category>Daerah</category>"
            f"<pubDate>{format_datetime(a.published.astimezone(UTC), usegmt=True)}</pubDate></item>"
            for a in self.articles
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Berita Banten</title>'
            f"<link>https://news.example/</link><description>Berita</description>{items}</channel></rss>"
        ).encode()
        return Answer(
            200, body, {"content-type": "application/rss+xml", "etag": self.etag, "last-modified": modified}
        )


# --- YouTube Data API v3 -----------------------------------------------------------------------------


@dataclass
class Video:
    id: str
    title: str
    published: datetime
    comments: list[tuple[str, str, datetime, list[tuple[str, str, datetime]]]] = field(default_factory=list)
    """(comment id, text, time, replies as (id, text, time)), newest first."""
    description: str = "Liputan warga: jalan rusak sejak banjir bulan lalu, belum ada perbaikan dari dinas."
    views: int = 120
    comments_disabled: bool = False
    """``commentThreads.list`` answers 403 ``commentsDisabled``."""


class YoutubeApi:
    """``search.list`` (100 units; descriptions shortened, as search gives them), ``videos.list`` (1 unit;
    full snippet and ``statistics`` as strings) and ``commentThreads.list`` (1 unit) with ``pageToken``;
    400 keyInvalid for a wrong key, 403 quotaExceeded once ``quota`` units are used."""

    KEY = "test-api-key"

    def __init__(self, videos: list[Video], page_size: int = 2, quota: int = 10_000) -> None:
        self.videos = videos
        self.page_size = page_size
        self.quota = quota
        self.used = 0
        self.standin = StandIn(self.handle)

    @staticmethod
    def _error(status: int, reason: str, message: str) -> Answer:
        return json_answer(
            status,
            {
                "error": {
                    "code": status,
                    "message": message,
                    "errors": [{"message": message, "domain": "youtube.quota", "reason": reason}],
                }
            },
        )

    def _page(self, items: list[Any], seen: Seen) -> tuple[list[Any], str | None]:
        offset = int(seen.params.get("pageToken", "CA0QAA")[2:-3])
        size = min(self.page_size, int(seen.params.get("maxResults", "5")))
        token = f"CA{offset + size}QAA" if offset + size < len(items) else None
        return items[offset : offset + size], token

    def handle(self, seen: Seen) -> Answer:
        if seen.params.get("key") != self.KEY:
            return self._error(400, "keyInvalid", "API key not valid. Please pass a valid API key.")
        cost = 100 if seen.path.endswith("/search") else 1
        if self.used + cost > self.quota:
            return self._error(
                403, "quotaExceeded", "The request cannot be completed because you have exceeded your quota."
            )
        self.used += cost
        if seen.path.endswith("/search"):
            after = datetime.fromisoformat(seen.params["publishedAfter"].replace("Z", "+00:00"))
            found = sorted(
                (v for v in self.videos if v.published >= after), key=lambda v: v.published, reverse=True
            )
            page, token = self._page(found, seen)
            body: dict[str, Any] = {
                "kind": "youtube#searchListResponse",
                "regionCode": "ID",
                "pageInfo": {"totalResults": len(found), "resultsPerPage": len(page)},
                "items": [
                    {
                        "kind": "youtube#searchResult",
                        "id": {"kind": "youtube#video", "videoId": v.id},
                        "snippet": {
                            "publishedAt": v.published.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "channelId": "UCbanten",
                            "title": v.title,
                            "description": v.description[:30],
                            "channelTitle": "Warga Banten",
                            "liveBroadcastContent": "none",
                        },
                    }
                    for v in page
                ],
            }
        elif seen.path.endswith("/videos"):
            wanted = seen.params.get("id", "").split(",")
            found = [v for v in self.videos if v.id in wanted]
            token = None
            body = {
                "kind": "youtube#videoListResponse",
                "pageInfo": {"totalResults": len(found), "resultsPerPage": len(found)},
                "items": [
                    {
                        "kind": "youtube#video",
                        "id": v.id,
                        "snippet": {
                            "publishedAt": v.published.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "channelId": "UCbanten",
                            "title": v.title,
                            "description": v.description,
                            "channelTitle": "Warga Banten",
                            "categoryId": "25",
                        },
                        "statistics": {
                            "viewCount": str(v.views),
                            "likeCount": "7",
                            "favoriteCount": "0",
                            "commentCount": str(len(v.comments)),
                        },
                    }
                    for v in found
                ],
            }
        else:
            video = next((v for v in self.videos if v.id == seen.params["videoId"]), None)
            if video is None:
                return self._error(
                    404, "videoNotFound", "The video identified by the videoId parameter could not be found."
                )
            if video.comments_disabled:
                return self._error(403, "commentsDisabled", "The video has disabled comments.")
            page, token = self._page(video.comments, seen)

            def comment(cid: str, text: str, at: datetime, parent: str | None = None) -> dict[str, Any]:
                snippet = {
                    "videoId": video.id,
                    "textDisplay": text,
                    "textOriginal": text,
                    "authorDisplayName": "@warga",
                    "authorChannelId": {"value": "UCwarga"},
                    "likeCount": 1,
                    "publishedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "updatedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                if parent:
                    snippet["parentId"] = parent
                return {"kind": "youtube#comment", "id": cid, "snippet": snippet}

            body = {
                "kind": "youtube#commentThreadListResponse",
                "pageInfo": {"totalResults": len(page), "resultsPerPage": len(page)},
                "items": [
                    {
                        "kind": "youtube#commentThread",
                        "id": cid,
                        "snippet": {
                            "channelId": "UCbanten",
                            "videoId": video.id,
                            "topLevelComment": comment(cid, text, at),
                            "canReply": True,
                            "totalReplyCount": len(replies),
                            "isPublic": True,
                        },
                        **(
                            {"replies": {"comments": [comment(r, t, a, cid) for r, t, a in replies]}}
                            if replies
                            else {}
                        ),
                    }
                    for cid, text, at, replies in page
                ],
            }
        if token:
            body["nextPageToken"] = token
        return json_answer(200, body)


# --- Facebook Graph API ------------------------------------------------------------------------------


@dataclass
class GraphItem:
    id: str
    message: str
    created: datetime
    author: tuple[str, str] = ("1015", "Warga")
    parent: str | None = None
    comments: list[GraphItem] = field(default_factory=list)


def graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class FacebookApi:
    """``GET /{page-id}/posts`` (``since``) and ``GET /{post-id}/comments`` (newest first), paged with
    ``paging.cursors.after`` and ``paging.next``; a bad token is a 400 ``OAuthException`` (code 190)."""

    TOKEN = "test-page-token"

    def __init__(self, page_id: str, posts: list[GraphItem], page_size: int = 2) -> None:
        self.page_id = page_id
        self.posts = posts
        self.page_size = page_size
        self.standin = StandIn(self.handle)

    def handle(self, seen: Seen) -> Answer:
        if seen.headers.get("authorization") != f"Bearer {self.TOKEN}":
            return json_answer(
                400,
                {
                    "error": {
                        "message": "Invalid OAuth access token.",
                        "type": "OAuthException",
                        "code": 190,
                        "fbtrace_id": "A1",
                    }
                },
            )
        parts = seen.path.strip("/").split("/")
        if parts == [self.page_id, "posts"]:
            since = datetime.fromtimestamp(int(seen.params.get("since", "0")), UTC)
            items = sorted(
                (p for p in self.posts if p.created >= since), key=lambda p: p.created, reverse=True
            )
            shown = [self._post(p) for p in items]
        elif len(parts) == 2 and parts[1] == "comments":
            post = next(p for p in self.posts if p.id == parts[0])
            shown = [self._comment(c) for c in sorted(post.comments, key=lambda c: c.created, reverse=True)]
        else:
            return json_answer(
                400, {"error": {"message": "Unknown path", "type": "GraphMethodException", "code": 100}}
            )
        offset = int(base64.urlsafe_b64decode(seen.params["after"]).decode()) if "after" in seen.params else 0
        page = shown[offset : offset + self.page_size]
        body: dict[str, Any] = {"data": page}
        if page:
            after = base64.urlsafe_b64encode(str(offset + len(page)).encode()).decode()
            before = base64.urlsafe_b64encode(str(offset).encode()).decode()
            body["paging"] = {"cursors": {"before": before, "after": after}}
            if offset + len(page) < len(shown):
                body["paging"]["next"] = f"{self.standin.url}{seen.path}?after={after}"
        return json_answer(200, body)

    @staticmethod
    def _post(p: GraphItem) -> dict[str, Any]:
        return {
            "id": p.id,
            "message": p.message,
            "created_time": graph_time(p.created),
            "permalink_url": f"https://www.facebook.com/{p.id}",
            "from": {"id": p.author[0], "name": p.author[1]},
            "comments": {"data": [], "summary": {"total_count": len(p.comments)}},
        }

    @staticmethod
    def _comment(c: GraphItem) -> dict[str, Any]:
        comment: dict[str, Any] = {
            "id": c.id,
            "message": c.message,
            "created_time": graph_time(c.created),
            "from": {"id": c.author[0], "name": c.author[1]},
            "like_count": 0,
            "comment_count": 0,
            "permalink_url": f"https://www.facebook.com/{c.id}",
        }
        if c.parent:
            comment["parent"] = {"id": c.parent}
        return comment


# --- Instagram Graph API -----------------------------------------------------------------------------


@dataclass
class Media:
    id: str
    caption: str
    created: datetime
    hashtags: list[str] = field(default_factory=list)
    username: str = "samsatbanten"
    comments: list[GraphItem] = field(default_factory=list)
    """Comments; a reply is a comment whose ``parent`` is the comment's id."""


class InstagramApi:
    """Instagram Graph API for a business account: ``GET /ig_hashtag_search`` (``user_id``, ``q``),
    ``GET /{hashtag-id}/recent_media`` (the last 24 hours, newest first), ``GET /{ig-user-id}/media`` (the
    account's own media, newest first) and ``GET /{media-id}/comments`` (with ``replies{…}``), paged with
    ``paging.cursors.after`` and ``paging.next``; ``+0000`` times; a bad token is a 400 ``OAuthException``."""

    TOKEN = "test-ig-token"

    def __init__(self, user_id: str, own: list[Media], others: list[Media], page_size: int = 2) -> None:
        self.user_id = user_id
        self.own = own
        self.others = others
        self.page_size = page_size
        self.searched: list[str] = []
        self.standin = StandIn(self.handle)

    @staticmethod
    def hashtag_id(tag: str) -> str:
        return "178" + str(sum(ord(c) * (i + 1) for i, c in enumerate(tag))).zfill(14)

    def _paged(self, shown: list[dict[str, Any]], seen: Seen) -> Answer:
        offset = int(base64.urlsafe_b64decode(seen.params["after"]).decode()) if "after" in seen.params else 0
        size = min(self.page_size, int(seen.params.get("limit", "25")))
        page = shown[offset : offset + size]
        body: dict[str, Any] = {"data": page}
        if page:
            after = base64.urlsafe_b64encode(str(offset + len(page)).encode()).decode()
            body["paging"] = {"cursors": {"before": "MA==", "after": after}}
            if offset + len(page) < len(shown):
                body["paging"]["next"] = f"{self.standin.url}{seen.path}?after={after}"
        return json_answer(200, body)

    def handle(self, seen: Seen) -> Answer:
        if seen.headers.get("authorization") != f"Bearer {self.TOKEN}":
            return json_answer(
                400,
                {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}},
            )
        parts = seen.path.strip("/").split("/")
        media = {m.id: m for m in [*self.own, *self.others]}
        tags = {self.hashtag_id(t): t for m in self.others for t in m.hashtags}
        if parts == ["ig_hashtag_search"]:
            self.searched.append(seen.params["q"])
            found = self.hashtag_id(seen.params["q"])
            return json_answer(200, {"data": [{"id": found}] if found in tags else []})
        if len(parts) == 2 and parts[1] == "recent_media" and parts[0] in tags:
            day_ago = datetime.now(UTC).timestamp() - 86_400
            items = [
                m for m in self.others if tags[parts[0]] in m.hashtags and m.created.timestamp() > day_ago
            ]
            return self._paged([self._media(m, with_user=False) for m in self._newest(items)], seen)
        if parts == [self.user_id, "media"]:
            return self._paged([self._media(m, with_user=True) for m in self._newest(self.own)], seen)
        if len(parts) == 2 and parts[1] == "comments" and parts[0] in media:
            top = [c for c in media[parts[0]].comments if c.parent is None]
            shown = []
            for comment in sorted(top, key=lambda c: c.created, reverse=True):
                item = self._comment(comment)
                replies = [c for c in media[parts[0]].comments if c.parent == comment.id]
                if replies:
                    item["replies"] = {
                        "data": [self._comment(r) for r in sorted(replies, key=lambda c: c.created)]
                    }
                shown.append(item)
            return self._paged(shown, seen)
        return json_answer(
            400,
            {"error": {"message": "Unsupported get request.", "type": "GraphMethodException", "code": 100}},
        )

    @staticmethod
    def _newest(items: list[Media]) -> list[Media]:
        return sorted(items, key=lambda m: m.created, reverse=True)

    @staticmethod
    def _media(m: Media, with_user: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": m.id,
            "caption": m.caption,
            "media_type": "IMAGE",
            "timestamp": graph_time(m.created),
            "permalink": f"https://www.instagram.com/p/{m.id}/",
            "comments_count": len(m.comments),
            "like_count": 9,
        }
        if with_user:  # hashtag media do not name their author
            item["username"] = m.username
        return item

    @staticmethod
    def _comment(c: GraphItem) -> dict[str, Any]:
        return {
            "id": c.id,
            "text": c.message,
            "timestamp": graph_time(c.created),
            "username": c.author[1],
            "like_count": 1,
        }
