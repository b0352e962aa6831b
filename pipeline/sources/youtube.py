"""YouTube Data API v3: ``search.list`` (100 quota units a call) finds new videos for each query, and
``commentThreads.list`` (1 unit) reads each new video's comments with their replies; both paged with
``pageToken``; ``videos.list`` (1 unit for up to 50) gives each new video's full description and counts.
Comments keep coming for days, so the newest ``RECENT_VIDEOS`` videos of each query within
the horizon are kept in its cursor and their threads written since the last round are read every round."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.settings import Settings
from pipeline.sources.connector import (
    AccessDenied,
    Connector,
    Cursor,
    Page,
    QuotaSpent,
    Request,
    Response,
    SourceError,
    build_post,
    collect,
    lenient,
    member,
    nested_objects,
    objects,
)
from pipeline.sources.http import QUOTA_REASONS
from schemas.posts import RawPost
from schemas.vocab import Platform

log = logging.getLogger("pantau.ingest")

SEARCH_COST = 100
COMMENTS_COST = 1
COMMENT_ERRORS = frozenset({403, 404})
"""Read by the parser: a video without comments is no failure (a 403 that is a refused key still is)."""
VIDEOS_COST = 1
"""``videos.list`` for up to 50 ids: the full description and the counts ``search.list`` leaves out."""
RECENT_VIDEOS = 20
"""Videos per query whose comments are read again every round: the newest found within the horizon."""

Known = dict[str, dict[str, str]]
"""Video id → ``{"published": …, "since": …}``: when it was published, and from when its comments are
still to be read (the start of the round that last read them, in whole seconds)."""


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def _recent(videos: Known, since: datetime) -> Known:
    """The newest ``RECENT_VIDEOS`` published within the horizon."""
    kept = [(v, k) for v, k in videos.items() if (_time(k.get("published")) or since) > since]
    kept.sort(key=lambda item: item[1]["published"], reverse=True)
    return dict(kept[:RECENT_VIDEOS])


class YoutubeSearch:
    """One query: ``search.list`` pages of new videos, each new video's comment threads, and once the
    search is caught up, the threads written since the last round on the videos found before."""

    def __init__(self, api_base: str, api_key: str, query: str) -> None:
        self.base = api_base.rstrip("/")
        self.api_key = api_key
        self.query = query
        self.key = "search:" + hashlib.sha256(query.encode()).hexdigest()[:16]
        self.description = query

    def _search(
        self, after: str, newest: str | None, page_token: str | None, state: dict[str, Any]
    ) -> Request:
        params = {
            "part": "snippet",
            "q": self.query,
            "type": "video",
            "order": "date",
            "maxResults": "50",
            "publishedAfter": after,
            "key": self.api_key,
        }
        if page_token:
            params["pageToken"] = page_token
        context = {"kind": "search", "after": after, "newest": newest, **state}
        return Request(f"{self.base}/search", params, cost=SEARCH_COST, context=context)

    def _comments(self, video: str, page_token: str | None = None, floor: str | None = None) -> Request:
        """A video's threads, newest first; with ``floor`` only those (and replies) written since."""
        params = {
            "part": "snippet,replies",
            "videoId": video,
            "maxResults": "100",
            "order": "time",
            "textFormat": "plainText",
            "key": self.api_key,
        }
        if page_token:
            params["pageToken"] = page_token
        context = {"kind": "comments", "floor": floor}
        return Request(
            f"{self.base}/commentThreads", params, cost=COMMENTS_COST, context=context, accept=COMMENT_ERRORS
        )

    def _comments_refused(self, request: Request, response: Response) -> Page:
        """A video whose comments are turned off (403 ``commentsDisabled``) or that is gone (404
        ``videoNotFound``) has no comments to read; that is no reason to stop the connector. A spent quota or
        a refused key still is."""
        reasons = _reasons(response)
        video = request.params.get("videoId")
        if response.status == 404 or "commentsDisabled" in reasons:
            log.info("youtube: no comments to read on %s (%s)", video, ", ".join(reasons) or response.status)
            return Page()
        if reasons & {reason.decode() for reason in QUOTA_REASONS}:
            raise QuotaSpent(f"youtube: the platform's quota is used ({', '.join(reasons)})")
        raise AccessDenied(
            f"youtube: {response.status} from {self.base}/commentThreads for {video}: check "
            f"PANTAU_YOUTUBE_TOKEN and the project's access ({', '.join(reasons) or 'no reason given'})"
        )

    def _videos(self, ids: list[str]) -> Request:
        params = {"part": "snippet,statistics", "id": ",".join(ids), "maxResults": "50", "key": self.api_key}
        return Request(f"{self.base}/videos", params, cost=VIDEOS_COST, context={"kind": "videos"})

    def start(self, cursor: Cursor | None, since: datetime) -> Request:
        cursor = cursor or {}
        after = cursor.get("published_after") or _stamp(since)
        state = {
            "videos": _recent(dict(cursor.get("videos") or {}), since),
            "round": _stamp(datetime.now(UTC)),
            "found": [],
        }
        return self._search(after, cursor.get("newest"), cursor.get("page_token"), state)

    def parse(self, request: Request, response: Response) -> Page:
        if response.status >= 400:  # only comment requests accept errors: see ``_comments``
            return self._comments_refused(request, response)
        body = response.json()
        if not isinstance(body, dict) or "items" not in body:
            raise SourceError(f"youtube: unexpected answer: {str(body)[:200]}")
        if request.context["kind"] == "comments":
            return self._parse_comments(request, body)
        if request.context["kind"] == "videos":  # one made private or deleted since the search: left out
            found, missing = collect([video_post(v) for v in objects(body["items"]) if v.get("id")])
            return Page(found, skipped=missing)
        context = request.context
        known: Known = context["videos"]
        videos = [
            i for i in objects(body["items"]) if isinstance(i.get("id"), dict) and i["id"].get("videoId")
        ]
        fresh = [v for v in videos if v["id"]["videoId"] not in known]
        posts: list[RawPost] = []
        skipped = 0
        follow = [self._videos([v["id"]["videoId"] for v in fresh])] if fresh else []
        follow += [self._comments(v["id"]["videoId"]) for v in fresh]
        updated = dict(known)
        published = {v["id"]["videoId"]: _published(v) for v in videos}
        for item in fresh:
            video = item["id"]["videoId"]
            updated[video] = {"published": published[video] or context["round"], "since": context["round"]}
        stamps = [stamp for stamp in published.values() if stamp]
        newest = max([*stamps, context.get("newest") or ""]) or None
        token = body.get("nextPageToken")
        after = context["after"]
        found = [*context["found"], *(v["id"]["videoId"] for v in fresh)]
        state = {"videos": updated, "round": context["round"], "found": found}
        if token:
            cursor: Cursor = {"published_after": after, "page_token": token, "videos": updated}
            if newest:
                cursor["newest"] = newest
            return Page(posts, self._search(after, newest, token, state), follow, cursor, skipped=skipped)
        # Caught up: read again the videos found in earlier rounds, from where their last reading began.
        for video, seen in known.items():
            if video not in found:  # those found this round were read in full
                follow.append(self._comments(video, floor=seen["since"]))
                updated[video] = {**seen, "since": context["round"]}
        # publishedAfter includes its own second: the next round starts one second after the newest video.
        following = (
            _stamp(datetime.fromisoformat(newest.replace("Z", "+00:00")) + timedelta(seconds=1))
            if newest
            else after
        )
        return Page(posts, None, follow, {"published_after": following, "videos": updated}, skipped=skipped)

    def _parse_comments(self, request: Request, body: dict[str, Any]) -> Page:
        floor = _time(request.context.get("floor"))
        items: list[RawPost | None] = []
        older = 0
        for thread in objects(body["items"]):
            snippet = member(thread.get("snippet"), "snippet")
            video = snippet.get("videoId") or request.params["videoId"]
            top = member(snippet.get("topLevelComment"), "topLevelComment")
            if floor is None or _fresh(top, floor):
                items.append(comment_post(top, video, video))
            else:
                older += 1
            for reply in nested_objects(thread, "replies", "comments"):
                if floor is None or _fresh(reply, floor):
                    parent = member(reply.get("snippet"), "snippet").get("parentId") or top.get("id")
                    items.append(comment_post(reply, video, parent))
        posts, skipped = collect(items)
        token = body.get("nextPageToken")
        # Threads come newest first: once one is older than the floor, so are the pages after it.
        more = token and not older
        following = (
            self._comments(request.params["videoId"], token, request.context.get("floor")) if more else None
        )
        return Page(posts, following, skipped=skipped)


def _reasons(response: Response) -> set[str]:
    """The ``error.errors[].reason`` of a Data API error answer."""
    try:
        errors = response.json()["error"]["errors"]
        return {str(e["reason"]) for e in errors if isinstance(e, dict) and e.get("reason")}
    except (ValueError, KeyError, TypeError):
        return set()


def _published(item: dict[str, Any]) -> str | None:
    """A search result's ``snippet.publishedAt`` when it is a readable time, else None."""
    stamp = member(item.get("snippet"), "snippet").get("publishedAt")
    return stamp if isinstance(stamp, str) and _time(stamp) is not None else None


def _fresh(comment: dict[str, Any], floor: datetime) -> bool:
    stamp = _time(member(comment.get("snippet"), "snippet").get("publishedAt"))
    return stamp is None or stamp >= floor


@lenient
def video_post(item: dict[str, Any]) -> RawPost | None:
    """A ``videos.list`` item (id a string, with ``statistics``) or a ``search.list`` one (id an object)."""
    snippet = item.get("snippet") or {}
    video = item["id"] if isinstance(item["id"], str) else item["id"]["videoId"]
    statistics = item.get("statistics") or {}
    return build_post(
        {
            "id": video,
            "platform": Platform.YOUTUBE,
            "text": "\n\n".join(p for p in (snippet.get("title"), snippet.get("description")) if p),
            "created_at": snippet.get("publishedAt"),
            "author": {"id": snippet.get("channelId"), "name": snippet.get("channelTitle")},
            "url": f"https://www.youtube.com/watch?v={video}",
            "conversation_id": video,
            "metrics": {
                "views": statistics.get("viewCount"),
                "likes": statistics.get("likeCount"),
                "replies": statistics.get("commentCount"),
            },
            "kind": "video",
        }
    )


@lenient
def comment_post(comment: dict[str, Any], video: str, parent: str | None) -> RawPost | None:
    snippet = comment.get("snippet") or {}
    if not comment.get("id"):
        return None
    return build_post(
        {
            "id": comment["id"],
            "platform": Platform.YOUTUBE,
            "text": snippet.get("textOriginal") or snippet.get("textDisplay") or "",
            "created_at": snippet.get("publishedAt"),
            "author": {
                "id": (snippet.get("authorChannelId") or {}).get("value"),
                "name": snippet.get("authorDisplayName"),
            },
            "url": f"https://www.youtube.com/watch?v={video}&lc={comment['id']}",
            "reply_to_id": parent,
            "conversation_id": video,
            "metrics": {"likes": snippet.get("likeCount")},
            "kind": "comment",
        }
    )


def youtube_connector(settings: Settings, queries: list[str]) -> Connector:
    if settings.youtube_token is None:
        raise SourceError(
            "youtube: PANTAU_YOUTUBE_TOKEN is not set (an API key from console.cloud.google.com)"
        )
    key = settings.youtube_token.get_secret_value()
    return Connector(
        name="youtube",
        platform=Platform.YOUTUBE,
        streams=[YoutubeSearch(settings.youtube_api_base, key, q) for q in queries],
        credential="PANTAU_YOUTUBE_TOKEN",
    )
