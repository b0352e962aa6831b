"""Instagram Graph API (business accounts): hashtag search (``ig_hashtag_search``, at most 30 hashtags per
7 days) and each hashtag's ``recent_media`` (the last 24 hours), plus the comments on the account's own
media (how the agency is answered and answers), paged with ``paging.cursors.after``."""

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
    nested_objects,
    objects,
)
from pipeline.sources.facebook import graph_time, next_after
from schemas.posts import RawPost
from schemas.vocab import Platform

MEDIA_FIELDS = "id,caption,timestamp,permalink,comments_count,like_count,media_type"
COMMENT_FIELDS = "id,text,timestamp,username,like_count,replies{id,text,timestamp,username,like_count}"


class HashtagMedia:
    def __init__(self, api_base: str, user_id: str, tag: str) -> None:
        self.base = api_base.rstrip("/")
        self.user_id = user_id
        self.tag = tag
        self.key = f"hashtag:{tag}"
        self.description = f"#{tag} (recent_media)"

    def _recent(self, hashtag: str, newest: str | None, top: str | None, after: str | None = None) -> Request:
        params = {"user_id": self.user_id, "fields": MEDIA_FIELDS, "limit": "50"}
        if after:
            params["after"] = after
        context = {"kind": "media", "hashtag": hashtag, "newest": newest, "top": top}
        return Request(f"{self.base}/{hashtag}/recent_media", params, context=context)

    def start(self, cursor: Cursor | None, since: datetime) -> Request:
        cursor = cursor or {}
        if cursor.get("hashtag_id"):
            return self._recent(cursor["hashtag_id"], cursor.get("newest") or since.isoformat(), None)
        params = {"user_id": self.user_id, "q": self.tag}
        return Request(
            f"{self.base}/ig_hashtag_search", params, context={"kind": "search", "newest": since.isoformat()}
        )

    def parse(self, request: Request, response: Response) -> Page:
        body = response.json()
        if not isinstance(body, dict) or "data" not in body:
            raise SourceError(f"instagram: unexpected answer: {str(body)[:200]}")
        context = request.context
        if context["kind"] == "search":
            if not body["data"]:
                return Page(cursor={})
            hashtag = body["data"][0]["id"]
            return Page(next=self._recent(hashtag, context["newest"], None), cursor={"hashtag_id": hashtag})
        floor = datetime.fromisoformat(context["newest"]) if context["newest"] else None
        items = [m for m in objects(body["data"]) if m.get("id")]
        fresh = [m for m in items if floor is None or (graph_time(m.get("timestamp")) or floor) > floor]
        posts, skipped = collect([media_post(m) for m in fresh])
        top = max([context.get("top") or "", *(p.created_at.isoformat() for p in posts)]) or None
        after = next_after(body)
        if after:
            return Page(
                posts, self._recent(context["hashtag"], context["newest"], top, after), skipped=skipped
            )
        return Page(
            posts,
            cursor={"hashtag_id": context["hashtag"], "newest": top or context["newest"]},
            skipped=skipped,
        )


class OwnMediaComments:
    """Comments (and their replies) on the account's own media of the horizon, newer than the last round."""

    def __init__(self, api_base: str, user_id: str) -> None:
        self.base = api_base.rstrip("/")
        self.user_id = user_id
        self.key = f"own:{user_id}"
        self.description = f"comments on the media of account {user_id}"

    def _media(self, since: str, comments_since: str, started: str, after: str | None = None) -> Request:
        params = {"fields": MEDIA_FIELDS + ",username", "limit": "50"}
        if after:
            params["after"] = after
        context = {"kind": "media", "since": since, "comments_since": comments_since, "started": started}
        return Request(f"{self.base}/{self.user_id}/media", params, context=context)

    def _comments(self, media: str, comments_since: str, after: str | None = None) -> Request:
        params = {"fields": COMMENT_FIELDS, "limit": "50"}
        if after:
            params["after"] = after
        context = {"kind": "comments", "media": media, "comments_since": comments_since}
        return Request(f"{self.base}/{media}/comments", params, context=context)

    def start(self, cursor: Cursor | None, since: datetime) -> Request:
        comments_since = (cursor or {}).get("comments_since") or since.isoformat()
        return self._media(
            since.isoformat(), comments_since, datetime.now(UTC).replace(microsecond=0).isoformat()
        )

    def parse(self, request: Request, response: Response) -> Page:
        body = response.json()
        if not isinstance(body, dict) or "data" not in body:
            raise SourceError(f"instagram: unexpected answer: {str(body)[:200]}")
        context = request.context
        floor = datetime.fromisoformat(context["comments_since"])
        if context["kind"] == "comments":
            items: list[RawPost | None] = []
            for comment in objects(body["data"]):
                stamp = graph_time(comment.get("timestamp"))
                if stamp is None or stamp >= floor:
                    items.append(comment_post(comment, context["media"], context["media"]))
                for reply in nested_objects(comment, "replies", "data"):
                    if (graph_time(reply.get("timestamp")) or floor) >= floor:
                        items.append(comment_post(reply, comment.get("id"), context["media"]))
            posts, skipped = collect(items)
            after = next_after(body)
            following = self._comments(context["media"], context["comments_since"], after) if after else None
            return Page(posts, following, skipped=skipped)
        since = datetime.fromisoformat(context["since"])
        listed = objects(body["data"])
        media = [m for m in listed if m.get("id") and (graph_time(m.get("timestamp")) or since) >= since]
        own = [m for m in media if (graph_time(m.get("timestamp")) or floor) >= floor]
        posts, skipped = collect([media_post(m) for m in own])
        follow = [self._comments(m["id"], context["comments_since"]) for m in media]
        after = next_after(body) if len(media) == len(listed) else None  # newest first
        if after:
            following = self._media(context["since"], context["comments_since"], context["started"], after)
            return Page(posts, following, follow, skipped=skipped)
        return Page(posts, None, follow, {"comments_since": context["started"]}, skipped=skipped)


@lenient
def media_post(media: dict[str, Any]) -> RawPost | None:
    return build_post(
        {
            "id": media["id"],
            "platform": Platform.INSTAGRAM,
            "text": media.get("caption") or "",
            "created_at": graph_time(media.get("timestamp")),
            "author": {"handle": media.get("username")} if media.get("username") else None,
            "url": media.get("permalink"),
            "conversation_id": media["id"],
            "metrics": {"likes": media.get("like_count"), "replies": media.get("comments_count")},
        }
    )


@lenient
def comment_post(comment: dict[str, Any], reply_to: str | None, media: str) -> RawPost | None:
    if not comment.get("id"):
        return None
    return build_post(
        {
            "id": comment["id"],
            "platform": Platform.INSTAGRAM,
            "text": comment.get("text") or "",
            "created_at": graph_time(comment.get("timestamp")),
            "author": {"handle": comment.get("username")} if comment.get("username") else None,
            "reply_to_id": reply_to,
            "conversation_id": media,
            "metrics": {"likes": comment.get("like_count")},
        }
    )


def instagram_connector(settings: Settings, hashtags: list[str]) -> Connector:
    if settings.instagram_token is None:
        raise SourceError(
            "instagram: PANTAU_INSTAGRAM_TOKEN is not set (a user access token of the business account)"
        )
    if not settings.instagram_user_id:
        raise SourceError(
            "instagram: PANTAU_INSTAGRAM_USER_ID is not set (the Instagram business account id)"
        )
    user = settings.instagram_user_id
    streams: list[Any] = [OwnMediaComments(settings.instagram_api_base, user)]
    streams += [HashtagMedia(settings.instagram_api_base, user, tag) for tag in hashtags]
    return Connector(
        name="instagram",
        platform=Platform.INSTAGRAM,
        streams=streams,
        auth={"authorization": f"Bearer {settings.instagram_token.get_secret_value()}"},
        credential="PANTAU_INSTAGRAM_TOKEN",
    )
