"""YouTube Data API v3: ``search.list`` (100 quota units a call) finds new videos for each query, and
``commentThreads.list`` (1 unit) reads each new video's comments with their replies; both paged with
``pageToken``."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
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
)
from schemas.posts import RawPost
from schemas.vocab import Platform

SEARCH_COST = 100
COMMENTS_COST = 1


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class YoutubeSearch:
    def __init__(self, api_base: str, api_key: str, query: str) -> None:
        self.base = api_base.rstrip("/")
        self.api_key = api_key
        self.query = query
        self.key = "search:" + hashlib.sha256(query.encode()).hexdigest()[:16]
        self.description = query

    def _search(self, after: str, newest: str | None, page_token: str | None) -> Request:
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
        context = {"kind": "search", "after": after, "newest": newest}
        return Request(f"{self.base}/search", params, cost=SEARCH_COST, context=context)

    def _comments(self, video: str, page_token: str | None = None) -> Request:
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
        return Request(
            f"{self.base}/commentThreads", params, cost=COMMENTS_COST, context={"kind": "comments"}
        )

    def start(self, cursor: Cursor | None, since: datetime) -> Request:
        cursor = cursor or {}
        after = cursor.get("published_after") or _stamp(since)
        return self._search(after, cursor.get("newest"), cursor.get("page_token"))

    def parse(self, request: Request, response: Response) -> Page:
        body = response.json()
        if not isinstance(body, dict) or "items" not in body:
            raise SourceError(f"youtube: unexpected answer: {str(body)[:200]}")
        if request.context["kind"] == "comments":
            return self._parse_comments(request, body)
        videos = [i for i in body["items"] if (i.get("id") or {}).get("videoId")]
        posts, skipped = collect([video_post(v) for v in videos])
        follow = [self._comments(v["id"]["videoId"]) for v in videos]
        stamps = [v["snippet"]["publishedAt"] for v in videos if (v.get("snippet") or {}).get("publishedAt")]
        newest = max([*stamps, request.context.get("newest") or ""]) or None
        token = body.get("nextPageToken")
        after = request.context["after"]
        if token:
            cursor: Cursor = {"published_after": after, "page_token": token}
            if newest:
                cursor["newest"] = newest
            return Page(posts, self._search(after, newest, token), follow, cursor, skipped=skipped)
        # publishedAfter includes its own second: the next round starts one second after the newest video.
        following = (
            _stamp(datetime.fromisoformat(newest.replace("Z", "+00:00")) + timedelta(seconds=1))
            if newest
            else after
        )
        return Page(posts, None, follow, {"published_after": following}, skipped=skipped)

    def _parse_comments(self, request: Request, body: dict[str, Any]) -> Page:
        items: list[RawPost | None] = []
        for thread in body["items"]:
            snippet = thread.get("snippet") or {}
            video = snippet.get("videoId") or request.params["videoId"]
            top = snippet.get("topLevelComment") or {}
            items.append(comment_post(top, video, video))
            for reply in (thread.get("replies") or {}).get("comments", []):
                parent = (reply.get("snippet") or {}).get("parentId") or top.get("id")
                items.append(comment_post(reply, video, parent))
        posts, skipped = collect(items)
        token = body.get("nextPageToken")
        following = self._comments(request.params["videoId"], token) if token else None
        return Page(posts, following, skipped=skipped)


def video_post(item: dict[str, Any]) -> RawPost | None:
    snippet = item.get("snippet") or {}
    video = item["id"]["videoId"]
    return build_post(
        {
            "id": video,
            "platform": Platform.YOUTUBE,
            "text": "\n\n".join(p for p in (snippet.get("title"), snippet.get("description")) if p),
            "created_at": snippet.get("publishedAt"),
            "author": {"id": snippet.get("channelId"), "name": snippet.get("channelTitle")},
            "url": f"https://www.youtube.com/watch?v={video}",
            "conversation_id": video,
            "kind": "video",
        }
    )


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
