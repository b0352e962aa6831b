"""X API v2 recent search (``GET /2/tweets/search/recent``): one stream per query, resumed with
``since_id``; a round interrupted between pages resumes with its ``next_token``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
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
    language,
    lenient,
    objects,
)
from schemas.posts import RawPost
from schemas.vocab import Platform

RECENT_WINDOW = timedelta(days=7)
"""Recent search reaches back 7 days; a longer horizon is cut to it."""

TWEET_FIELDS = (
    "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,public_metrics,lang,geo"
)


class XRecentSearch:
    def __init__(self, api_base: str, query: str) -> None:
        self.url = api_base.rstrip("/") + "/2/tweets/search/recent"
        self.query = query
        self.key = "recent:" + hashlib.sha256(query.encode()).hexdigest()[:16]
        self.description = query

    def _request(self, since: dict[str, str], newest_id: str | None, next_token: str | None) -> Request:
        params = {
            "query": self.query,
            "max_results": "100",
            "tweet.fields": TWEET_FIELDS,
            "expansions": "author_id,geo.place_id",
            "user.fields": "username,name",
            "place.fields": "full_name,geo",
            **since,
        }
        if next_token:
            params["next_token"] = next_token
        return Request(self.url, params, context={"since": since, "newest_id": newest_id})

    def start(self, cursor: Cursor | None, since: datetime) -> Request:
        cursor = cursor or {}
        if cursor.get("since_id"):
            bound = {"since_id": str(cursor["since_id"])}
        else:
            earliest = datetime.now(UTC) - RECENT_WINDOW + timedelta(minutes=1)
            start = cursor.get("start_time") or max(since, earliest).strftime("%Y-%m-%dT%H:%M:%SZ")
            bound = {"start_time": start}
        return self._request(bound, cursor.get("newest_id"), cursor.get("next_token"))

    def parse(self, request: Request, response: Response) -> Page:
        body = response.json()
        if not isinstance(body, dict):
            raise SourceError(f"x: unexpected answer: {str(body)[:200]}")
        if "data" not in body and body.get("errors") and not body.get("meta"):
            raise SourceError(f"x: {body['errors'][0]}")
        meta = body.get("meta") or {}
        users, places = expansions(body)
        posts, skipped = collect([tweet_post(t, users, places) for t in objects(body.get("data") or [])])
        since: dict[str, str] = dict(request.context["since"])
        newest = request.context.get("newest_id") or meta.get("newest_id")  # the first page's newest
        next_token = meta.get("next_token")
        if next_token:
            cursor: Cursor = {**since, "next_token": next_token}
            if newest:
                cursor["newest_id"] = newest
            return Page(posts, self._request(since, newest, next_token), cursor=cursor, skipped=skipped)
        if newest:
            return Page(posts, None, cursor={"since_id": newest}, skipped=skipped)
        return Page(posts, None, cursor=since if "since_id" in since else {}, skipped=skipped)


def expansions(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The users and places an answer (a search page, a stream message) expands, by id."""
    includes = body.get("includes") or {}
    users = {u["id"]: u for u in objects(includes.get("users", [])) if "id" in u}
    places = {p["id"]: p for p in objects(includes.get("places", [])) if "id" in p}
    return users, places


@lenient
def tweet_post(tweet: dict[str, Any], users: dict[str, Any], places: dict[str, Any]) -> RawPost | None:
    user = users.get(tweet.get("author_id", ""), {})
    handle = user.get("username")
    replied = next(
        (r.get("id") for r in tweet.get("referenced_tweets") or [] if r.get("type") == "replied_to"), None
    )
    public = tweet.get("public_metrics") or {}
    shares = (public.get("retweet_count") or 0) + (public.get("quote_count") or 0)
    geo: dict[str, Any] | None = None
    if tweet.get("geo"):
        place = places.get(tweet["geo"].get("place_id", ""), {})
        geo = {"place": place.get("full_name")}
        coordinates = (tweet["geo"].get("coordinates") or {}).get("coordinates")
        if coordinates and len(coordinates) == 2:
            geo["lon"], geo["lat"] = coordinates
    fields: dict[str, Any] = {
        "id": tweet["id"],
        "platform": Platform.X,
        "text": tweet.get("text", ""),
        "created_at": tweet.get("created_at"),
        "author": {"id": tweet.get("author_id"), "handle": handle, "name": user.get("name")},
        "url": f"https://x.com/{handle or 'i'}/status/{tweet['id']}",
        "lang": language(tweet.get("lang")),
        "reply_to_id": replied,
        "conversation_id": tweet.get("conversation_id"),
        "metrics": {
            "likes": public.get("like_count"),
            "replies": public.get("reply_count"),
            "shares": shares if public else None,
            "views": public.get("impression_count"),
        },
        "geo": geo,
    }
    if tweet.get("in_reply_to_user_id"):
        fields["in_reply_to_user_id"] = tweet["in_reply_to_user_id"]
    return build_post(fields)


def x_connector(settings: Settings, queries: list[str]) -> Connector:
    if settings.x_bearer_token is None:
        raise SourceError("x: PANTAU_X_BEARER_TOKEN is not set (an app's bearer token from developer.x.com)")
    token = settings.x_bearer_token.get_secret_value()
    return Connector(
        name="x",
        platform=Platform.X,
        streams=[XRecentSearch(settings.x_api_base, q) for q in queries],
        auth={"authorization": f"Bearer {token}"},
        credential="PANTAU_X_BEARER_TOKEN",
    )
