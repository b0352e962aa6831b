"""Facebook Graph API: the agencies' Pages, their posts and the comments on them (the public's complaints
and the agency's answers), paged with ``paging.cursors.after``.

Comments keep arriving on older posts, so each round reads the posts of the horizon and, for each, the
comments newer than the previous round's start (newest first, stopping at the first older one)."""

from __future__ import annotations

from datetime import UTC, datetime
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
    member,
    objects,
)
from schemas.posts import RawPost
from schemas.vocab import Platform

POST_FIELDS = "id,message,created_time,permalink_url,from,comments.summary(true).limit(0),shares"
COMMENT_FIELDS = "id,message,created_time,from,parent{id},like_count,comment_count,permalink_url"


def graph_time(text: object) -> datetime | None:
    """Graph API times (Facebook and Instagram): ``2026-12-01T08:30:00+0000``, or ISO 8601 as a proxy or a
    newer API version may write it (``…Z``, ``…+00:00``); None when unreadable, without a zone, or no text."""
    if not text or not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return stamp if stamp.tzinfo is not None else None  # a naive time cannot be compared with a floor


def next_after(body: dict[str, Any]) -> str | None:
    """The ``after`` cursor, only when the answer says there is a next page."""
    paging = body.get("paging") or {}
    return (paging.get("cursors") or {}).get("after") if paging.get("next") else None


class PageComments:
    def __init__(self, api_base: str, page_id: str) -> None:
        self.base = api_base.rstrip("/")
        self.page_id = page_id
        self.key = f"page:{page_id}"
        self.description = f"Page {page_id}: posts and their comments"

    def _posts(self, since: datetime, comments_since: str, started: str, after: str | None = None) -> Request:
        params = {"fields": POST_FIELDS, "since": str(int(since.timestamp())), "limit": "100"}
        if after:
            params["after"] = after
        context = {
            "kind": "posts",
            "since": since.isoformat(),
            "comments_since": comments_since,
            "started": started,
        }
        return Request(f"{self.base}/{self.page_id}/posts", params, context=context)

    def _comments(self, post: str, comments_since: str, after: str | None = None) -> Request:
        params = {
            "fields": COMMENT_FIELDS,
            "filter": "stream",
            "order": "reverse_chronological",
            "limit": "100",
        }
        if after:
            params["after"] = after
        return Request(
            f"{self.base}/{post}/comments",
            params,
            context={"kind": "comments", "post": post, "comments_since": comments_since},
        )

    def start(self, cursor: Cursor | None, since: datetime) -> Request:
        comments_since = (cursor or {}).get("comments_since") or since.isoformat()
        return self._posts(since, comments_since, datetime.now(UTC).replace(microsecond=0).isoformat())

    def parse(self, request: Request, response: Response) -> Page:
        body = response.json()
        if not isinstance(body, dict) or "data" not in body:
            raise SourceError(f"facebook: unexpected answer: {str(body)[:200]}")
        context = request.context
        floor = datetime.fromisoformat(context["comments_since"])
        if context["kind"] == "comments":
            return self._parse_comments(request, body, floor)
        items = [p for p in objects(body["data"]) if p.get("id")]
        fresh = [p for p in items if (graph_time(p.get("created_time")) or floor) >= floor]
        posts, skipped = collect([graph_post(p, None, None) for p in fresh])
        follow = [self._comments(p["id"], context["comments_since"]) for p in items]
        after = next_after(body)
        if after:
            since = datetime.fromisoformat(context["since"])
            return Page(
                posts,
                self._posts(since, context["comments_since"], context["started"], after),
                follow,
                skipped=skipped,
            )
        return Page(posts, None, follow, {"comments_since": context["started"]}, skipped=skipped)

    def _parse_comments(self, request: Request, body: dict[str, Any], floor: datetime) -> Page:
        post = request.context["post"]
        items = objects(body["data"])
        fresh = [c for c in items if (graph_time(c.get("created_time")) or floor) >= floor]
        posts, skipped = collect(
            [graph_post(c, member(c.get("parent"), "parent").get("id") or post, post) for c in fresh]
        )
        after = next_after(body)
        more = after and len(fresh) == len(items)  # newest first: an older one means the rest is older
        following = self._comments(post, request.context["comments_since"], after) if more else None
        return Page(posts, following, skipped=skipped)


@lenient
def graph_post(item: dict[str, Any], reply_to: str | None, conversation: str | None) -> RawPost | None:
    author = item.get("from") or {}
    comments = ((item.get("comments") or {}).get("summary") or {}).get("total_count")
    return build_post(
        {
            "id": item["id"],
            "platform": Platform.FACEBOOK,
            "text": item.get("message") or "",
            "created_at": graph_time(item.get("created_time")),
            "author": {"id": author.get("id"), "name": author.get("name")},
            "url": item.get("permalink_url"),
            "reply_to_id": reply_to,
            "conversation_id": conversation or item["id"],
            "metrics": {
                "likes": item.get("like_count"),
                "replies": item.get("comment_count", comments),
                "shares": (item.get("shares") or {}).get("count"),
            },
        }
    )


def facebook_connector(settings: Settings) -> Connector:
    if settings.facebook_token is None:
        raise SourceError("facebook: PANTAU_FACEBOOK_TOKEN is not set (a Page access token)")
    if not settings.facebook_pages:
        raise SourceError("facebook: PANTAU_FACEBOOK_PAGES lists no Page ids")
    return Connector(
        name="facebook",
        platform=Platform.FACEBOOK,
        streams=[PageComments(settings.facebook_api_base, page) for page in settings.facebook_pages],
        auth={"authorization": f"Bearer {settings.facebook_token.get_secret_value()}"},
        credential="PANTAU_FACEBOOK_TOKEN",
    )
