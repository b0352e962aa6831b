"""Connectors without Kafka: the platforms' answers (from the loopback stand-ins) read into posts and
cursors, HTTP rate limits and errors, queries from the gazetteer."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.settings import Settings
from pipeline.sources.connector import AccessDenied, QuotaSpent, Request, Response, SourceError
from pipeline.sources.facebook import PageComments
from pipeline.sources.http import Fetcher, reset_delay
from pipeline.sources.ids import canonical_uri, uri_id
from pipeline.sources.instagram import HashtagMedia
from pipeline.sources.mastodon import TagTimeline, snowflake_at
from pipeline.sources.queries import load_terms, mastodon_tags, x_queries
from pipeline.sources.rss import Feed
from pipeline.sources.x import XRecentSearch
from pipeline.sources.youtube import YoutubeSearch
from pipeline.validation import Rejected, validate_raw_post
from schemas.posts import MAX_TEXT_CHARS, RawPost
from tests.standins import (
    Answer,
    Article,
    FacebookApi,
    GraphItem,
    MastodonApi,
    NewsFeed,
    Seen,
    StandIn,
    Toot,
    Tweet,
    Video,
    XApi,
    YoutubeApi,
    json_answer,
    rate_limited,
    unavailable,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def _ask(standin: StandIn, request: Request) -> Response:
    """One request through the stand-in's handler (no socket): what the API would answer."""
    path = request.url.removeprefix(standin.url) if request.url.startswith(standin.url) else request.url
    path = "/" + path.split("://", 1)[-1].split("/", 1)[-1] if "://" in path else path
    route, _, query = path.partition("?")
    answer = standin.handle(Seen(route, dict(request.params), {**request.headers}, query=query))
    return Response(answer.status, answer.headers, answer.body)


def test_a_url_id_is_the_same_for_every_spelling_of_the_url() -> None:
    same = [
        "https://News.Example/berita/123?utm_source=x&b=2&a=1#top",
        "HTTPS://news.example:443/berita/123?a=1&b=2",
    ]
    assert len({canonical_uri(u) for u in same}) == 1
    assert len({uri_id(u) for u in same}) == 1
    assert uri_id(same[0]) != uri_id("https://news.example/berita/124?a=1&b=2")
    assert uri_id(same[0]).startswith("u") and len(uri_id(same[0])) == 33


def test_x_queries_fit_the_limit_and_generic_phrases_carry_a_banten_place() -> None:
    terms = load_terms()
    queries = x_queries(terms)
    assert queries and all(len(q) <= 512 for q in queries)
    stnk = [q for q in queries if " stnk " in f" {q} " or "(stnk " in q or " stnk)" in q]
    assert stnk and all("banten" in q and "tangerang" in q for q in stnk)
    assert any("from:samsatbanten" in q for q in queries)  # the agency's own replies
    joined = " ".join(queries)
    assert '"samsat cikokol"' in joined  # specific to Banten: asked as it is
    assert "pkb" not in joined.split()  # ambiguous short forms are not searched
    assert all(len(q) <= 120 for q in x_queries(terms, limit=120))


def test_the_queries_file_adds_removes_and_replaces_terms(tmp_path: Path) -> None:
    override = tmp_path / "queries.yaml"
    override.write_text(
        "add:\n  specific: [antrean samsat cikokol]\n  hashtags: ['#bantenmacet']\n  handles: ['@pdamtkr']\n"
        "remove: [stnk, '@samsatbanten']\n"
    )
    terms = load_terms(override)
    assert "antrean samsat cikokol" in terms.specific and "bantenmacet" in terms.hashtags
    assert "pdamtkr" in terms.handles and "samsatbanten" not in terms.handles
    assert "stnk" not in terms.generic and "@samsatbanten" not in terms.specific
    override.write_text("replace: true\nadd:\n  hashtags: [bantenmacet]\n")
    assert x_queries(load_terms(override)) == ["(#bantenmacet) -is:retweet"]
    assert mastodon_tags(load_terms(override)) == ["bantenmacet"]
    override.write_text("add:\n  specifc: [typo]\n")
    with pytest.raises(ValueError, match=r"add\.specifc"):
        load_terms(override)


def test_x_pages_with_next_token_and_resumes_with_the_newest_id() -> None:
    tweets = [
        Tweet(100 + i, f"samsat cikokol antre {i}", NOW - timedelta(hours=i), query_word="cikokol")
        for i in range(5)
    ]
    tweets.append(Tweet(200, "balasan samsat cikokol", NOW, reply_to=104, query_word="cikokol"))
    api = XApi(tweets, page_size=4)
    try:
        stream = XRecentSearch(api.standin.url, '("samsat cikokol") -is:retweet')
        first = stream.start(None, NOW - timedelta(days=30))
        assert "start_time" in first.params and "since_id" not in first.params
        assert datetime.fromisoformat(first.params["start_time"]) > NOW - timedelta(days=7)  # recent = 7 d
        ask = dict(first.params)
        request = Request(first.url, ask, {"authorization": "Bearer test-bearer"}, context=first.context)
        page = stream.parse(request, _ask(api.standin, request))
        assert [p.id for p in page.posts] == ["200", "104", "103", "102"]
        assert page.cursor and page.cursor["newest_id"] == "200" and page.cursor["next_token"]
        reply = page.posts[0]
        assert reply.key == "x:200" and reply.reply_to_id == "104" and reply.conversation_id == "104"
        assert reply.author and reply.author.handle == "samsatbanten" and reply.author.name == "Samsat Banten"
        assert reply.metrics and (reply.metrics.likes, reply.metrics.shares, reply.metrics.views) == (
            3,
            2,
            40,
        )
        assert reply.url == "https://x.com/samsatbanten/status/200"
        assert (reply.model_extra or {})["in_reply_to_user_id"] == "99"
        # A run stopped here resumes from the saved cursor with the same token.
        resumed = stream.start(page.cursor, NOW - timedelta(days=7))
        assert resumed.params["next_token"] == page.cursor["next_token"]
        assert resumed.params["start_time"] == first.params["start_time"]
        request = Request(
            resumed.url,
            dict(resumed.params),
            {"authorization": "Bearer test-bearer"},
            context=resumed.context,
        )
        last = stream.parse(request, _ask(api.standin, request))
        assert [p.id for p in last.posts] == ["101", "100"] and last.next is None
        assert last.cursor == {"since_id": "200"}
        again = stream.start(last.cursor, NOW - timedelta(days=7))
        assert again.params["since_id"] == "200" and "start_time" not in again.params
    finally:
        api.standin.close()


def test_an_item_not_shaped_as_documented_is_skipped_and_the_rest_of_its_page_is_read() -> None:
    from pipeline.sources.connector import Response
    from pipeline.sources.x import XRecentSearch

    stream = XRecentSearch("http://x.example", "(samsat)")
    request = stream.start(None, NOW - timedelta(days=1))
    good = {"id": "7", "text": "samsat cikokol antre", "created_at": "2026-12-01T08:00:00.000Z"}
    odd = {"id": "8", "text": "x", "created_at": "2026-12-01T08:00:00.000Z", "referenced_tweets": [3]}
    body = {"data": [1, "two", odd, good], "includes": {"users": ["u"]}, "meta": {"result_count": 4}}
    page = stream.parse(request, Response(200, {}, json.dumps(body).encode()))
    assert [p.key for p in page.posts] == ["x:7"] and page.skipped == 1  # non-objects are left out
    with pytest.raises(TypeError):  # no list at all: the runner reports an unexpected answer
        stream.parse(request, Response(200, {}, b'{"data": {"id": "7"}}'))


def test_odd_replies_and_snippets_are_left_out_and_the_rest_of_the_page_is_read() -> None:
    """Nested lists (Instagram ``replies.data``, YouTube ``replies.comments``) and the objects around them
    get the same leniency as a page's own items: one odd thread does not fail its page."""
    from pipeline.sources.connector import Response
    from pipeline.sources.instagram import OwnMediaComments

    stamp = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    comment = {"text": "kapan buka?", "timestamp": stamp, "username": "warga"}
    instagram = OwnMediaComments("http://graph.example", "17841499999999999")
    request = instagram._comments("1790", (NOW - timedelta(days=1)).isoformat())
    body = {
        "data": [
            {**comment, "id": "1", "replies": "odd"},
            {**comment, "id": "2", "replies": {"data": "odd"}},
            {**comment, "id": "3", "replies": {"data": [7, {**comment, "id": "4"}, {**comment, "id": "5"}]}},
            {**comment, "id": "6", "timestamp": ["odd"]},
        ]
    }
    page = instagram.parse(request, Response(200, {}, json.dumps(body).encode()))
    assert sorted(p.id for p in page.posts) == ["1", "2", "3", "4", "5"] and page.skipped == 1

    published = (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")

    def youtube_comment(cid: str, **snippet: Any) -> dict[str, Any]:
        return {"id": cid, "snippet": {"textOriginal": "parah", "publishedAt": published, **snippet}}

    youtube = YoutubeSearch("http://youtube.example", "key", "jalan rusak")
    request = youtube._comments("vid1", None, (NOW - timedelta(days=1)).isoformat())
    body = {
        "items": [
            {"snippet": "odd"},
            {"snippet": {"videoId": "vid1", "topLevelComment": youtube_comment("Ug1")}, "replies": []},
            {
                "snippet": {"videoId": "vid1", "topLevelComment": youtube_comment("Ug2")},
                "replies": {"comments": [3, youtube_comment("Ug2.r1", parentId="Ug2"), {"snippet": 5}]},
            },
            {"snippet": {"topLevelComment": youtube_comment("Ug3", publishedAt=["kemarin"])}},
        ]
    }
    page = youtube.parse(request, Response(200, {}, json.dumps(body).encode()))
    assert sorted(p.id for p in page.posts) == ["Ug1", "Ug2", "Ug2.r1"] and page.skipped == 3
    assert next(p for p in page.posts if p.id == "Ug2.r1").reply_to_id == "Ug2"

    search = youtube.start(None, NOW - timedelta(days=1))
    body = {
        "items": [
            {"id": {"videoId": "v1"}, "snippet": "odd"},
            {"id": {"videoId": "v2"}, "snippet": {"publishedAt": 7}},
            {"id": {"videoId": "v3"}, "snippet": {"publishedAt": published}},
        ]
    }
    page = youtube.parse(search, Response(200, {}, json.dumps(body).encode()))
    assert [r.params["videoId"] for r in page.follow[1:]] == ["v1", "v2", "v3"]  # each video's comments
    assert page.cursor and page.cursor["published_after"] > published  # the one readable time moves it

    facebook = PageComments("http://graph.example", "1234")
    request = facebook._comments("1234_1", (NOW - timedelta(days=1)).isoformat())
    post = {"message": "kapan jalan diperbaiki", "created_time": stamp, "from": {"id": "9", "name": "Warga"}}
    body = {
        "data": [
            {**post, "id": "1234_1_1", "parent": "odd"},
            {**post, "id": "1234_1_2", "parent": {"id": "x"}},
        ]
    }
    page = facebook.parse(request, Response(200, {}, json.dumps(body).encode()))
    assert {p.id: p.reply_to_id for p in page.posts} == {"1234_1_1": "1234_1", "1234_1_2": "x"}


def test_reset_headers_in_each_platform_s_form() -> None:
    now = time.time()
    assert reset_delay({"x-rate-limit-reset": str(int(now + 30))}, now) == pytest.approx(30, abs=1)
    assert reset_delay({"retry-after": "12"}, now) == 12
    iso = datetime.fromtimestamp(now + 60, UTC).isoformat()
    assert reset_delay({"x-ratelimit-reset": iso}, now) == pytest.approx(60, abs=1)
    assert reset_delay({}, now) is None


def _fetcher(**kw: object) -> Fetcher:
    return Fetcher("x", "PANTAU_X_BEARER_TOKEN", {"authorization": "Bearer test-bearer"}, 4, 2.0, **kw)  # type: ignore[arg-type]


def test_a_429_waits_for_the_reset_and_a_503_is_retried_with_back_off() -> None:
    api = XApi([Tweet(1, "samsat cikokol", NOW, query_word="cikokol")])
    fetcher = _fetcher()
    try:
        api.standin.faults = [rate_limited(reset_in=2), unavailable(), unavailable()]
        started = time.monotonic()
        response = fetcher.fetch(Request(api.standin.url + "/2/tweets/search/recent", {"query": "cikokol"}))
        waited = time.monotonic() - started
        assert response.status == 200 and response.json()["data"][0]["id"] == "1"
        assert len(api.standin.seen) == 4
        assert waited >= 1.0  # the reset, at least a second ahead
        assert fetcher.rate.limited == 1 and fetcher.rate.remaining == 449
    finally:
        fetcher.close()
        api.standin.close()


def test_a_5xx_that_lasts_gives_up_after_the_attempts_and_401_stops_at_once() -> None:
    api = XApi([])
    fetcher = _fetcher()
    try:
        api.standin.faults = [unavailable() for _ in range(4)]
        with pytest.raises(SourceError, match="failed 4 times, last: 503"):
            fetcher.fetch(Request(api.standin.url + "/2/tweets/search/recent", {"query": "x"}))
        api.standin.seen.clear()
        denied = Fetcher("x", "PANTAU_X_BEARER_TOKEN", {"authorization": "Bearer wrong"}, 4, 2.0)
        with pytest.raises(AccessDenied) as caught:
            denied.fetch(Request(api.standin.url + "/2/tweets/search/recent", {"query": "x"}))
        denied.close()
        assert len(api.standin.seen) == 1
        message = str(caught.value)
        assert "\n" not in message and "401" in message and "PANTAU_X_BEARER_TOKEN" in message
        assert "Bearer" not in message
    finally:
        fetcher.close()
        api.standin.close()


def test_an_answer_too_large_is_refused_after_the_limit_compressed_or_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gzip

    from pipeline.sources import http as fetching

    monkeypatch.setattr(fetching, "MAX_RESPONSE_BYTES", 1024 * 1024)
    big = b"[" + b"0," * (1024 * 1024) + b"0]"
    answers = {
        # 8 MiB of JSON in about 8 KiB: refused while it is read
        "/bomb": Answer(
            200, gzip.compress(b"[" + b" " * (8 * 1024 * 1024) + b"]"), {"content-encoding": "gzip"}
        ),
        "/big": Answer(200, big),  # refused by its Content-Length before it is read
        "/small": Answer(200, b"[]"),
    }
    with StandIn(lambda seen: answers[seen.path]) as standin:
        fetcher = _fetcher()
        try:
            for path in ("/bomb", "/big"):
                with pytest.raises(SourceError, match="larger than 1 MiB"):
                    fetcher.fetch(Request(standin.url + path, {}))
            assert [s.path for s in standin.seen] == ["/bomb", "/big"]  # refused once each, not retried
            assert fetcher.fetch(Request(standin.url + "/small", {})).json() == []
        finally:
            fetcher.close()


def test_a_redirect_is_followed_without_reading_its_body_and_a_loop_ends() -> None:
    written = 0

    def endless() -> Iterator[bytes]:
        nonlocal written
        for _ in range(64):
            yield b"x" * (1024 * 1024)
            written += 1

    def answer(seen: Seen) -> Answer:
        if seen.path == "/moved":  # a redirect with 64 MiB behind it: never read
            return Answer(302, headers={"location": "/small"}, chunks=endless())
        if seen.path == "/loop":
            return Answer(301, headers={"location": "/loop"})
        return Answer(200, b"[]")

    with StandIn(answer) as standin:
        fetcher = _fetcher()
        try:
            assert fetcher.fetch(Request(standin.url + "/moved", {})).json() == []
            assert [s.path for s in standin.seen] == ["/moved", "/small"]
            assert written < 16, f"{written} MiB of the redirect's body were sent"
            with pytest.raises(SourceError, match="redirects more than 20 times"):
                fetcher.fetch(Request(standin.url + "/loop", {}))
        finally:
            fetcher.close()


def test_a_redirect_to_another_origin_does_not_carry_the_token() -> None:
    with StandIn(lambda seen: Answer(200, b"[]")) as elsewhere:
        moved = Answer(302, headers={"location": elsewhere.url + "/landed"})
        with StandIn(lambda seen: moved) as platform:
            fetcher = _fetcher()
            try:
                assert fetcher.fetch(Request(platform.url + "/moved", {})).json() == []
            finally:
                fetcher.close()
            assert platform.seen[0].headers["authorization"] == "Bearer test-bearer"
    assert [s.path for s in elsewhere.seen] == ["/landed"]
    assert "authorization" not in elsewhere.seen[0].headers


def test_mastodon_reads_forward_with_min_id_and_keys_toots_by_uri() -> None:
    start = NOW - timedelta(days=2)
    toots = [
        Toot(
            int(snowflake_at(start + timedelta(hours=i))) + 1,
            f"https://social.example/users/warga/statuses/{i}",
            f"<p>Banjir di <a href='#'>#banten</a> {i}</p>",
            start + timedelta(hours=i),
        )
        for i in range(5)
    ]
    old = Toot(
        int(snowflake_at(NOW - timedelta(days=9))),
        "https://social.example/users/warga/statuses/old",
        "<p>lama</p>",
        NOW - timedelta(days=9),
    )
    api = MastodonApi([*toots, old], page_size=2)
    try:
        stream = TagTimeline(api.standin.url, "banten")
        request: Request | None = stream.start(None, NOW - timedelta(days=7))
        ids: list[str] = []
        cursor = None
        while request is not None:
            page = stream.parse(request, _ask(api.standin, request))
            ids += [p.id for p in page.posts]
            cursor = page.cursor
            request = page.next
        assert ids == [uri_id(t.uri) for t in (toots[1], toots[0], toots[3], toots[2], toots[4])]
        assert cursor and cursor["min_id"] == str(toots[4].id)
        assert [r[0] for r in cursor["recent"]] == [str(t.id) for t in toots]  # kept for deletion checks
        again = stream.start(cursor, NOW - timedelta(days=7))
        assert stream.parse(again, _ask(api.standin, again)).posts == []
        first = stream.parse(
            stream.start(None, NOW - timedelta(days=7)),
            _ask(api.standin, stream.start(None, NOW - timedelta(days=7))),
        ).posts[0]
        assert first.text.startswith("Banjir di #banten") and first.platform.value == "mastodon"
        assert first.author and first.author.handle == "@warga@mastodon.example"
    finally:
        api.standin.close()


def _mastodon_round(api: MastodonApi, stream: TagTimeline, cursor: Any) -> tuple[list[Any], list[str], Any]:
    """A round as the runner does it: pages, their follow-ups; the posts, deletions and last cursor."""
    request: Request | None = stream.start(cursor, NOW - timedelta(days=7))
    posts: list[Any] = []
    gone: list[str] = []
    while request is not None:
        page = stream.parse(request, _ask(api.standin, request))
        posts += page.posts
        gone += page.deleted
        pending = deque(page.follow)
        while pending:
            sub = stream.parse(pending[0], _ask(api.standin, pending.popleft()))
            posts += sub.posts
            gone += sub.deleted
            pending.extend(sub.follow)
        cursor = page.cursor if page.cursor is not None else cursor
        request = page.next
    return posts, gone, cursor


def test_mastodon_links_replies_to_their_parent_and_thread_by_uri_and_removes_deleted_statuses() -> None:
    start = NOW - timedelta(hours=5)

    def toot(n: int, parent: Toot | None = None) -> Toot:
        moment = start + timedelta(minutes=n)
        return Toot(
            int(snowflake_at(moment)) + 1,
            f"https://social.example/users/warga/statuses/{n}",
            f"<p>PDAM Tirta Kerta Raharja mati {n} #banten</p>",
            moment,
            in_reply_to=parent.id if parent else None,
        )

    root = toot(0)
    answer = toot(1, root)
    again = toot(2, answer)
    api = MastodonApi([root, answer, again], page_size=2)
    try:
        stream = TagTimeline(api.standin.url, "banten")
        posts, gone, cursor = _mastodon_round(api, stream, None)
        by_id = {p.id: p for p in posts}
        assert sorted(by_id) == sorted(uri_id(t.uri) for t in (root, answer, again)) and gone == []
        first, second, third = (by_id[uri_id(t.uri)] for t in (root, answer, again))
        assert first.reply_to_id is None and first.conversation_id == first.id
        assert second.reply_to_id == first.id and second.conversation_id == first.id
        assert third.reply_to_id == second.id and third.conversation_id == first.id
        assert third.model_extra and third.model_extra["in_reply_to_local_id"] == str(answer.id)
        # The author deletes the reply: the next round finds it gone and removes it, once.
        api.toots.remove(answer)
        api.standin.seen.clear()
        posts, gone, cursor = _mastodon_round(api, stream, cursor)
        assert posts == [] and gone == [f"mastodon:{uri_id(answer.uri)}"]
        assert [r[0] for r in cursor["recent"]] == [str(root.id), str(again.id)]
        assert _mastodon_round(api, stream, cursor)[:2] == ([], [])
        # Left out of the batch answer but still there: no proof, nothing removed.
        check = stream._check(cursor["min_id"], cursor["recent"], "")
        assert check is not None
        fetcher = Fetcher("mastodon", "PANTAU_MASTODON_TOKEN", {}, 1, 1.0)
        try:
            assert len(fetcher.fetch(check).json()) == 2  # the repeated id[] survive HTTP
        finally:
            fetcher.close()
        page = stream.parse(check, Response(200, {}, b"[]"))
        assert len(page.follow) == 2 and page.deleted == []
        assert all(stream.parse(f, _ask(api.standin, f)).deleted == [] for f in page.follow)
    finally:
        api.standin.close()


def test_rss_items_become_news_posts_and_an_unchanged_feed_adds_nothing() -> None:
    articles = [
        Article(
            f"https://news.example/banten/{i}",
            f"Jalan rusak di Serang {i}",
            "Warga mengeluh &amp; lapor",
            NOW - timedelta(days=i),
        )
        for i in range(3)
    ]
    articles.append(Article("https://news.example/lama", "Lama", "lama", NOW - timedelta(days=30)))
    feed = NewsFeed(articles)
    try:
        stream = Feed(feed.standin.url + "/rss")
        request = stream.start(None, NOW - timedelta(days=7))
        page = stream.parse(request, _ask(feed.standin, request))
        assert [p.id for p in page.posts] == [uri_id(a.guid) for a in articles[:3]]
        post = page.posts[0]
        assert post.text == "Jalan rusak di Serang 0\n\nWarga mengeluh & lapor"
        assert post.url == articles[0].guid and post.author and post.author.name == "Redaksi"
        assert page.cursor and page.cursor["etag"] == feed.etag
        again = stream.start(page.cursor, NOW - timedelta(days=7))
        assert again.headers["if-none-match"] == feed.etag
        assert stream.parse(again, _ask(feed.standin, again)).posts == []
        # A feed without validators: items already sent are not sent again, new ones are.
        articles.insert(0, Article("https://news.example/baru", "Baru", "baru", NOW + timedelta(minutes=1)))
        cursor = {k: v for k, v in page.cursor.items() if k not in ("etag", "last_modified")}
        later = stream.start(cursor, NOW - timedelta(days=7))
        assert [p.id for p in stream.parse(later, _ask(feed.standin, later)).posts] == [
            uri_id(articles[0].guid)
        ]
    finally:
        feed.standin.close()


def _gate(posts: list[RawPost]) -> list[str]:
    """Ids of the posts the runner would send: those the one gate accepts, as ``send_posts`` asks it."""
    sent = []
    for post in posts:
        try:
            sent.append(validate_raw_post(post.model_dump(mode="json", exclude_none=True)).id)
        except Rejected:
            continue
    return sent


def test_a_feed_item_dated_years_ahead_does_not_hold_back_the_items_after_it() -> None:
    ahead = Article("https://news.example/2035", "Jadwal 2035", "salah tanggal", NOW + timedelta(days=3650))
    today = Article("https://news.example/hari-ini", "Banjir Lebak", "air naik", NOW - timedelta(hours=2))
    articles = [ahead, today]
    feed = NewsFeed(articles)
    try:
        stream = Feed(feed.standin.url + "/rss")
        request = stream.start(None, NOW - timedelta(days=7))
        first = stream.parse(request, _ask(feed.standin, request))
        assert _gate(first.posts) == [uri_id(today.guid)]  # the gate refuses the one from 2035
        assert first.cursor and first.cursor["newest"] == today.published.isoformat()
        # The next round (as the runner does it: from the saved cursor) brings what was published since.
        later = Article("https://news.example/sore", "Banjir surut", "air turun", NOW - timedelta(hours=1))
        articles.insert(0, later)
        again = stream.start(first.cursor, NOW - timedelta(days=7))
        second = stream.parse(again, _ask(feed.standin, again))
        assert _gate(second.posts) == [uri_id(later.guid)]
        assert second.cursor and second.cursor["newest"] == later.published.isoformat()
    finally:
        feed.standin.close()


def test_a_url_with_a_bad_port_or_bracket_is_named_as_written_instead_of_raising() -> None:
    assert canonical_uri("HTTP://News.Example:99999/a?utm_x=1#f") == "http://news.example:99999/a"
    assert canonical_uri("http://user@x:abc/") == "http://x:abc/"
    assert canonical_uri(" http://[::1/a ") == "http://[::1/a"
    bad = ["http://x:99999/a", "http://x:abc/", "http://[::1/a"]
    assert len({uri_id(u) for u in bad}) == 3


def test_feed_items_with_malformed_guids_arrive_with_the_rest() -> None:
    """A bad port or an unsplittable URL used to raise in the id mapping and fail the whole feed."""
    stamp = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    guids = ["http://x:99999/a", "http://[::1/a", "http://x:abc/", "tag:b,2026:1"]
    items = "".join(
        f"<item><guid>{g}</guid><title>samsat {g}</title><pubDate>{stamp}</pubDate></item>" for g in guids
    )
    stream = Feed("https://news.example/rss")
    request = stream.start(None, NOW - timedelta(days=7))
    page = stream.parse(request, Response(200, {}, f"<rss><channel>{items}</channel></rss>".encode()))
    assert [p.id for p in page.posts] == [uri_id(g) for g in guids] and page.skipped == 0
    entry = (
        f"<entry><id>http://x:99999/b</id><title>samsat</title><updated>{NOW.isoformat()}</updated></entry>"
    )
    atom = f'<feed xmlns="http://www.w3.org/2005/Atom">{entry}</feed>'.encode()
    page = stream.parse(request, Response(200, {}, atom))
    assert [p.id for p in page.posts] == [uri_id("http://x:99999/b")]


def test_a_long_article_is_cut_at_a_word_within_the_limit_instead_of_refused() -> None:
    stamp = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    body = "Banjir merendam Lebak. " * 2000  # 46,000 characters
    item = f"<item><guid>https://news.example/panjang</guid><title>Banjir</title><description>{body}</description>"
    stream = Feed("https://news.example/rss")
    request = stream.start(None, NOW - timedelta(days=7))
    xml = f"<rss><channel>{item}<pubDate>{stamp}</pubDate></item></channel></rss>".encode()
    (post,) = stream.parse(request, Response(200, {}, xml)).posts
    assert post.text.startswith("Banjir\n\nBanjir merendam Lebak.") and post.text.endswith(" …")
    assert 8_800 < len(post.text) <= MAX_TEXT_CHARS - 1_000 and post.text[8:-2] in body  # room for masking
    assert _gate([post]) == [post.id]


def test_the_horizon_reads_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANTAU_INGEST_HORIZON", "36h")
    assert Settings().ingest_horizon == timedelta(hours=36)
    monkeypatch.setenv("PANTAU_INGEST_HORIZON", "2d")
    assert Settings().ingest_horizon == timedelta(days=2)
    assert json_answer(200, {}).status == 200


def _round(standin: StandIn, stream: Any, cursor: dict[str, Any] | None) -> tuple[list[str], Any]:
    """A round as the runner does it, without Kafka: pages, their follow-ups, the last cursor."""
    request = stream.start(cursor, NOW - timedelta(days=7))
    keys: list[str] = []
    while request is not None:
        page = stream.parse(request, _ask(standin, request))
        keys += [p.key for p in page.posts]
        pending = deque(page.follow)
        while pending:
            sub = stream.parse(pending[0], _ask(standin, pending.popleft()))
            keys += [p.key for p in sub.posts]
            pending.extend(sub.follow)
            if sub.next is not None:
                pending.append(sub.next)
        cursor = page.cursor if page.cursor is not None else cursor
        request = page.next
    return keys, cursor


def test_youtube_finds_videos_then_their_comments_and_replies() -> None:
    videos = [
        Video(
            f"vid{i}",
            f"Jalan rusak Pandeglang {i}",
            NOW - timedelta(days=i),
            comments=[
                (
                    f"Ugz{i}a",
                    "kapan diperbaiki",
                    NOW - timedelta(hours=1),
                    [(f"Ugz{i}a.r1", "sudah dilaporkan", NOW - timedelta(minutes=30))],
                ),
                (f"Ugz{i}b", "parah", NOW - timedelta(hours=2), []),
                (f"Ugz{i}c", "tiap tahun begini", NOW - timedelta(hours=3), []),
            ],
        )
        for i in range(3)
    ]
    videos.append(Video("vidold", "lama", NOW - timedelta(days=30)))
    api = YoutubeApi(videos, page_size=2)
    try:
        stream = YoutubeSearch(api.standin.url, YoutubeApi.KEY, "jalan rusak|pandeglang")
        keys, cursor = _round(api.standin, stream, None)
        assert sorted(keys) == sorted(
            [f"youtube:{v.id}" for v in videos[:3]]
            + [f"youtube:Ugz{i}{x}" for i in range(3) for x in "abc"]
            + [f"youtube:Ugz{i}a.r1" for i in range(3)]
        )
        assert (
            api.used == 2 * 100 + 2 + 3 * 2
        )  # two search pages with their videos.list; 2 comment pages a video
        (video,) = stream.parse(stream._videos(["vid0"]), _ask(api.standin, stream._videos(["vid0"]))).posts
        assert video.text == f"{videos[0].title}\n\n{videos[0].description}"  # search.list shortens it
        assert video.metrics and (video.metrics.views, video.metrics.replies) == (120, 3)
        assert cursor["published_after"] == (videos[0].published + timedelta(seconds=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        assert sorted(cursor["videos"]) == ["vid0", "vid1", "vid2"]  # kept to be read again
        used = api.used
        again, cursor = _round(api.standin, stream, cursor)
        assert again == [] and api.used - used == 100 + 3  # one search; each known video's newest threads
        # Comments keep coming on a video found earlier: the next round reads them, once. (The cursor is
        # moved back 20 minutes, as if the round before had been then: the comments lie in between.)
        for seen in cursor["videos"].values():
            seen["since"] = (datetime.fromisoformat(seen["since"]) - timedelta(minutes=20)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
        late = datetime.now(UTC) - timedelta(minutes=10)
        videos[1].comments.insert(0, ("Ugz1new", "masih rusak", late, [("Ugz1new.r1", "betul", late)]))
        videos[2].comments[0][3].append(("Ugz2a.r2", "sudah seminggu", late))  # a reply on an old thread
        later, cursor = _round(api.standin, stream, cursor)
        assert sorted(later) == ["youtube:Ugz1new", "youtube:Ugz1new.r1", "youtube:Ugz2a.r2"]
        assert _round(api.standin, stream, cursor)[0] == []
        request = stream.start(None, NOW - timedelta(days=7))
        reply = next(
            p
            for p in stream.parse(stream._comments("vid0"), _ask(api.standin, stream._comments("vid0"))).posts
            if p.id == "Ugz0a.r1"
        )
        assert reply.reply_to_id == "Ugz0a" and reply.conversation_id == "vid0" and request.cost == 100
    finally:
        api.standin.close()


def test_youtube_quota_and_key_errors() -> None:
    api = YoutubeApi([Video("v1", "x", NOW)], quota=150)
    fetcher = Fetcher("youtube", "PANTAU_YOUTUBE_TOKEN", {}, 3, 1.0)
    try:
        search = YoutubeSearch(api.standin.url, YoutubeApi.KEY, "samsat")
        fetcher.fetch(search.start(None, NOW - timedelta(days=1)))
        with pytest.raises(QuotaSpent, match="quota is used"):
            fetcher.fetch(search.start(None, NOW - timedelta(days=1)))
        wrong = YoutubeSearch(api.standin.url, "nope", "samsat")
        with pytest.raises(AccessDenied, match="PANTAU_YOUTUBE_TOKEN"):
            fetcher.fetch(wrong.start(None, NOW - timedelta(days=1)))
    finally:
        fetcher.close()
        api.standin.close()


def test_facebook_reads_page_posts_and_only_new_comments_each_round() -> None:
    posts = [
        GraphItem(
            f"123_{i}",
            f"Info layanan Samsat {i}",
            NOW - timedelta(days=i),
            author=("123", "Samsat Banten"),
            comments=[
                GraphItem(f"123_{i}_c{j}", f"pertanyaan {j}", NOW - timedelta(hours=10 - j)) for j in range(3)
            ],
        )
        for i in range(3)
    ]
    posts[0].comments.append(
        GraphItem(
            "123_0_r", "silakan DM", NOW - timedelta(hours=5), author=("123", "Samsat"), parent="123_0_c1"
        )
    )
    api = FacebookApi("123", posts, page_size=2)
    try:
        stream = PageComments(api.standin.url, "123")
        bearer = {"authorization": f"Bearer {FacebookApi.TOKEN}"}

        def ask(request: Request) -> Response:
            return _ask(
                api.standin, Request(request.url, request.params, bearer, request.cost, request.context)
            )

        keys: list[str] = []
        request: Request | None = stream.start(None, NOW - timedelta(days=7))
        cursor = None
        replies = {}
        while request is not None:
            page = stream.parse(request, ask(request))
            keys += [p.key for p in page.posts]
            pending = deque(page.follow)
            while pending:
                sub = stream.parse(pending[0], ask(pending.popleft()))
                keys += [p.key for p in sub.posts]
                replies.update({p.id: p.reply_to_id for p in sub.posts})
                if sub.next:
                    pending.append(sub.next)
            cursor = page.cursor or cursor
            request = page.next
        assert sorted(keys) == sorted(
            [f"facebook:123_{i}" for i in range(3)]
            + [f"facebook:123_{i}_c{j}" for i in range(3) for j in range(3)]
            + ["facebook:123_0_r"]
        )
        assert replies["123_0_r"] == "123_0_c1" and replies["123_1_c0"] == "123_1"
        assert cursor and "comments_since" in cursor
        # Next round: only the comment written since.
        posts[2].comments.append(
            GraphItem("123_2_new", "masih belum", datetime.now(UTC) + timedelta(seconds=5))
        )
        request = stream.start(cursor, NOW - timedelta(days=7))
        later: list[str] = []
        while request is not None:
            page = stream.parse(request, ask(request))
            later += [p.key for p in page.posts]
            for follow in page.follow:
                later += [p.key for p in stream.parse(follow, ask(follow)).posts]
            request = page.next
        assert later == ["facebook:123_2_new"]
        with pytest.raises(AccessDenied, match="OAuthException"):
            Fetcher("facebook", "PANTAU_FACEBOOK_TOKEN", {}, 3, 1.0).fetch(stream.start(None, NOW))
    finally:
        api.standin.close()


def test_instagram_hashtag_search_then_recent_media() -> None:
    stream = HashtagMedia("https://graph.example/v21.0", "1784", "samsatbanten")
    first = stream.start(None, NOW - timedelta(days=7))
    assert first.url.endswith("/ig_hashtag_search") and first.params["q"] == "samsatbanten"
    found = stream.parse(
        first, Response(200, {}, json.dumps({"data": [{"id": "17843853986012965"}]}).encode())
    )
    assert found.cursor == {"hashtag_id": "17843853986012965"} and found.next is not None
    media = {
        "data": [
            {
                "id": "17895695668004550",
                "caption": "Antre di #samsatbanten",
                "media_type": "IMAGE",
                "timestamp": (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "permalink": "https://www.instagram.com/p/abc/",
                "comments_count": 2,
                "like_count": 9,
            }
        ],
        "paging": {"cursors": {"after": "QVFIU"}},
    }
    page = stream.parse(found.next, Response(200, {}, json.dumps(media).encode()))
    (post,) = page.posts
    assert post.key == "instagram:17895695668004550" and post.metrics and post.metrics.likes == 9
    assert page.next is None and page.cursor and page.cursor["hashtag_id"] == "17843853986012965"
    again = stream.start(page.cursor, NOW - timedelta(days=7))
    assert stream.parse(again, Response(200, {}, json.dumps(media).encode())).posts == []


def test_the_push_endpoint_reads_json_arrays_objects_and_ndjson_through_the_one_gate() -> None:
    from pipeline.sources.push import read_body

    good = {"id": "a1", "platform": "other", "text": "Samsat Cikokol antre", "created_at": NOW.isoformat()}
    ndjson = "\n".join([json.dumps(good), '{"id": "b", "platform": "x"}', "", "not json", "[1]"]).encode()
    outcome = read_body(ndjson, "application/x-ndjson")
    assert [k for k, _ in outcome.accepted] == ["other:a1"]
    assert [r["line"] for r in outcome.rejected] == [2, 4, 5]
    assert "text" in outcome.rejected[0]["reason"] and "not JSON" in outcome.rejected[1]["reason"]
    array = read_body(json.dumps([good, {**good, "id": "a2"}, 3]).encode(), "application/json")
    assert [k for k, _ in array.accepted] == ["other:a1", "other:a2"]
    assert array.rejected == [{"line": 3, "reason": "expected a JSON object, got int"}]
    assert [k for k, _ in read_body(json.dumps(good).encode(), "").accepted] == ["other:a1"]
    assert read_body(b"", "application/json").rejected == [{"line": 1, "reason": "no posts in the body"}]
    assert "not UTF-8" in read_body(b"\xff\xfe{", "").rejected[0]["reason"]


def test_the_sources_file_names_known_connectors(tmp_path: Path) -> None:
    from pipeline.sources.services import SourcesFileError, read_sources

    sources = tmp_path / "sources.yaml"
    sources.write_text("connectors: [x, rss, x, serve]\n")
    assert read_sources(sources) == ["x", "rss", "serve"]
    from pipeline.sources.services import command

    assert command("x-compliance")[-3:] == ["ingest", "x", "--compliance"] and command("rss")[-2:] == [
        "ingest",
        "rss",
    ]
    sources.write_text("connectors: [tiktok]\n")
    with pytest.raises(SourcesFileError, match=r"connectors\.0"):
        read_sources(sources)


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_stream_lines_are_split_in_any_chunking_and_an_overlong_one_is_skipped_without_being_held(
    size: int,
) -> None:
    from pipeline.sources.xstream import bounded_lines

    data = b'{"a": 1}\r\n\r\n' + b"y" * 40 + b"\r\nsa\xffmsat\n" + b"z" * 25 + b"\nlast"
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert list(bounded_lines(chunks, limit=30)) == ['{"a": 1}', "", None, "sa\ufffdmsat", "z" * 25, "last"]
    assert list(bounded_lines([b"q" * 50], limit=30)) == [None]
    # The limit counts the line, not the \r of its \r\n: exactly 30 bytes pass, 31 do not, however split.
    edge = b"e" * 30 + b"\r\n" + b"f" * 31 + b"\r\n" + b"g" * 30 + b"\r"
    pieces = [edge[i : i + size] for i in range(0, len(edge), size)]
    assert list(bounded_lines(pieces, limit=30)) == ["e" * 30, None, "g" * 30]


def test_a_stream_line_that_is_no_tweet_raises_and_a_system_message_is_none() -> None:
    from pipeline.sources.connector import SHAPE_ERRORS
    from pipeline.sources.xstream import stream_post

    for line in ("{not json", "[1, 2]", '{"data": "x"}', "[" * 100_000):
        with pytest.raises(SHAPE_ERRORS):
            stream_post(line)
    assert stream_post('{"errors": [{"title": "operational-disconnect"}]}') is None
    assert stream_post('{"data": {"id": "1", "referenced_tweets": [3]}}') is None  # an odd tweet: skipped


def test_stream_rules_become_exactly_the_queries_and_leave_other_rules_alone() -> None:
    from pipeline.sources.xstream import id_at, id_time, plan_rules, rule_tag

    existing = [
        {"id": "1", "value": "kucing lucu", "tag": "other-app"},
        {"id": "2", "value": "old query", "tag": "pantau:0123456789abcdef"},
        {"id": "3", "value": "(samsat) -is:retweet", "tag": rule_tag("(samsat) -is:retweet")},
    ]
    plan = plan_rules(existing, ["(samsat) -is:retweet", "(bpbd) -is:retweet"])
    assert plan.delete == ["2"] and plan.add == [
        {"value": "(bpbd) -is:retweet", "tag": rule_tag("(bpbd) -is:retweet")}
    ]
    assert plan_rules(existing, ["(samsat) -is:retweet", "a", "b"], limit=3).dropped == ["b"]
    moment = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    assert id_time(id_at(moment)) == moment
    assert id_time("1346889436626259968").year == 2021  # an id from X's documentation


def test_rounds_are_spaced_so_the_daily_budget_lasts_the_day() -> None:
    from pipeline.sources.runner import pause_after

    assert pause_after(34, 900, 60) == pytest.approx(34 * 86_400 / 900)  # X: about 54 minutes
    assert pause_after(1, 5_000, 60) == 60  # cheap rounds: the poll interval
    assert pause_after(1400, 10_000, 60) == pytest.approx(12_096)  # YouTube searches
    assert pause_after(5, 0, 60) == 60


def test_the_push_endpoint_takes_deletions_as_tombstones() -> None:
    from pipeline.sources.push import read_body

    body = (
        b'{"id": "1346889436626259968", "platform": "x", "deleted": true}\n'
        b'{"id": "a b", "platform": "x", "deleted": true}\n'
    )
    outcome = read_body(body, "application/x-ndjson")
    assert outcome.accepted == [("x:1346889436626259968", None)]
    assert outcome.rejected == [{"line": 2, "reason": "a deletion needs the post's id and platform"}]


def test_instagram_and_facebook_read_graph_times_with_one_helper_iso_included() -> None:
    from pipeline.sources.facebook import graph_time
    from pipeline.sources.instagram import media_post

    moment = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert graph_time("2026-12-01T08:30:00+0000") == moment
    assert graph_time("2026-12-01T15:30:00+07:00") == moment
    assert graph_time("2026-12-01T08:30:00.000Z") == moment  # ISO 8601: Instagram took only +0000 before
    assert graph_time("2026-12-01T08:30:00") is None  # no zone: not comparable with a floor
    assert graph_time("kemarin") is None and graph_time(None) is None
    post = media_post({"id": "1789", "caption": "Antre #samsatbanten", "timestamp": "2026-12-01T08:30:00Z"})
    assert post is not None and post.created_at == moment


def _feed_change(item: str, verb: str, **ids: str) -> dict[str, Any]:
    """A Page ``feed`` webhook delivery, as Meta documents it."""
    value = {"item": item, "verb": verb, "created_time": 1764750000, "from": {"id": "1015"}, **ids}
    return {
        "object": "page",
        "entry": [{"id": "77", "time": 1764750001, "changes": [{"field": "feed", "value": value}]}],
    }


class _Acked:
    def get(self, timeout: float) -> None:
        return None


class _RecordingProducer:
    """Records what would go to Kafka (the end-to-end runs are in tests/integration/test_ingest.py)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    def send(self, topic: str, key: bytes, value: bytes | None) -> _Acked:
        self.sent.append((topic, key, value))
        return _Acked()

    def flush(self) -> None:
        return None


class _Push:
    """A ``PushServer`` on loopback (token ``s3cret``, Meta app secret ``app-secret``) and a client."""

    def __init__(self) -> None:
        import threading

        from pipeline.sources.push import MetaWebhook, PushServer

        self.producer = _RecordingProducer()
        meta = MetaWebhook("app-secret", "verify-me")
        self.server = PushServer("127.0.0.1", 0, "s3cret", self.producer, "raw", meta)  # type: ignore[arg-type]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.server.serve, args=(self.stop,), daemon=True)
        self.thread.start()

    def call(self, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, bytes]:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    def signed(self, body: bytes) -> tuple[int, bytes]:
        import hashlib
        import hmac

        signature = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
        return self.call("POST", "/webhooks/meta", body, **{"X-Hub-Signature-256": signature})


@pytest.fixture
def push() -> Any:
    server = _Push()
    yield server
    server.stop.set()
    server.thread.join(timeout=30)


def test_meta_webhooks_turn_removed_page_comments_and_posts_into_tombstones(push: _Push) -> None:
    from pipeline.sources.webhooks import removed_keys

    assert removed_keys(_feed_change("comment", "remove", comment_id="77_1_2", post_id="77_1")) == [
        "facebook:77_1_2"
    ]
    assert removed_keys(_feed_change("status", "remove", post_id="77_1")) == ["facebook:77_1"]
    assert removed_keys(_feed_change("comment", "add", comment_id="77_1_3", post_id="77_1")) == []
    assert removed_keys(_feed_change("comment", "hide", comment_id="77_1_3", post_id="77_1")) == []
    assert removed_keys({"object": "instagram", "entry": [{"changes": [{"field": "comments"}]}]}) == []

    check = "/webhooks/meta?hub.mode=subscribe&hub.verify_token={}&hub.challenge=1158201444"
    assert push.call("GET", check.format("verify-me")) == (200, b"1158201444")
    assert push.call("GET", check.format("wrong"))[0] == 403
    body = json.dumps(_feed_change("comment", "remove", comment_id="77_1_2", post_id="77_1")).encode()
    assert push.call("POST", "/webhooks/meta", body, **{"X-Hub-Signature-256": "sha256=00"})[0] == 401
    assert push.producer.sent == []
    status, answer = push.signed(body)
    assert status == 200 and json.loads(answer) == {"removed": 1}
    assert push.producer.sent == [("raw", b"facebook:77_1_2", None)]


def test_hostile_webhook_and_ingest_requests_get_an_answer_and_send_nothing(push: _Push) -> None:
    """Each bad request is answered (never a dropped connection) and nothing reaches Kafka."""
    import socket

    body = json.dumps(_feed_change("comment", "remove", comment_id="77_1_2", post_id="77_1")).encode()
    assert push.call("POST", "/webhooks/meta", body, **{"X-Hub-Signature-256": "sha256=\u00e9"})[0] == 401
    for shape in ({"object": "page", "entry": 5}, {"object": "page", "entry": [{"changes": {"a": 1}}]}):
        assert push.signed(json.dumps(shape).encode()) == (200, b'{"removed": 0}')
    bad_value = {"object": "page", "entry": [{"changes": [{"field": "feed", "value": ["x"]}]}]}
    assert push.signed(json.dumps(bad_value).encode()) == (200, b'{"removed": 0}')
    assert push.signed(b"[" * 100_000)[0] == 400  # nested too deeply for the parser
    no_challenge = "/webhooks/meta?hub.mode=subscribe&hub.verify_token=verify-me"
    assert push.call("GET", no_challenge)[0] == 400
    with socket.create_connection(("127.0.0.1", push.server.port), timeout=10) as raw:
        raw.sendall(
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\nContent-Length: -1\r\n\r\n"
        )
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    for length, status in ((b"-1", b"400"), (b"x", b"411"), (b"10485761", b"413")):  # the webhook reads alike
        with socket.create_connection(("127.0.0.1", push.server.port), timeout=10) as raw:
            raw.sendall(b"POST /webhooks/meta HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.1 " + status)
    assert push.producer.sent == []


def test_ndjson_lines_split_only_at_newlines_and_one_bad_json_body_says_why_once() -> None:
    from pipeline.sources.push import read_body

    post = {
        "id": "1",
        "platform": "x",
        "text": "antre\u2028panjang",
        "created_at": "2026-05-01T10:00:00+07:00",
    }
    ndjson = (json.dumps(post, ensure_ascii=False) + "\n" + json.dumps({**post, "id": "2"})).encode()
    outcome = read_body(ndjson, "application/x-ndjson")
    assert [k for k, _ in outcome.accepted] == ["x:1", "x:2"] and outcome.rejected == []
    pretty = b'{\n  "id": "1",\n  "id": "2"\n}'
    (rejected,) = read_body(pretty, "application/json").rejected
    assert "appears twice" in rejected["reason"]
    gone = [{"deleted": True, "platform": "x", "id": i} for i in ("1", "\ud800", "3\n")]
    deletions = json.dumps(gone).encode()  # ensure_ascii: the lone surrogate travels as \\ud800
    outcome = read_body(deletions, "application/json")
    assert outcome.accepted == [("x:1", None)] and [r["line"] for r in outcome.rejected] == [2, 3]


def test_instagram_reads_its_own_media_comments_and_hashtag_media_and_then_only_what_is_new() -> None:
    from pipeline.sources.instagram import OwnMediaComments
    from tests.standins import InstagramApi, Media

    own = [
        Media(
            f"1790000000000000{i}",
            f"Info pajak {i}",
            NOW - timedelta(days=i + 1),
            comments=[GraphItem(f"1791000000000000{i}", "kapan buka?", NOW - timedelta(hours=5))],
        )
        for i in range(3)
    ]
    reply = GraphItem(
        "17912", "Buka jam 8", NOW - timedelta(hours=4), ("1", "samsatbanten"), own[0].comments[0].id
    )
    own[0].comments.append(reply)
    tagged = [
        Media(
            f"1795000000000000{i}", f"Antre #samsatbanten {i}", NOW - timedelta(hours=i + 1), ["samsatbanten"]
        )
        for i in range(3)
    ]
    tagged.append(Media("17959", "lama #samsatbanten", NOW - timedelta(days=2), ["samsatbanten"]))
    api = InstagramApi("17841499999999999", own, tagged, page_size=2)
    bearer = {"authorization": f"Bearer {InstagramApi.TOKEN}"}

    def ask(standin: StandIn, request: Request) -> Response:
        return _ask(standin, Request(request.url, request.params, bearer, request.cost, request.context))

    class Authorised:
        """The stand-in with the token the runner sends on every request."""

        url = api.standin.url

        @staticmethod
        def handle(seen: Seen) -> Any:
            return api.handle(Seen(seen.path, seen.params, {**seen.headers, **bearer}, query=seen.query))

    try:
        mine = OwnMediaComments(api.standin.url, api.user_id)
        keys, cursor = _round(Authorised, mine, None)  # type: ignore[arg-type]
        assert sorted(keys) == sorted(
            [f"instagram:{m.id}" for m in own] + [f"instagram:{c.id}" for m in own for c in m.comments]
        )
        comments = mine._comments(own[0].id, (NOW - timedelta(days=1)).isoformat())
        answer = next(p for p in mine.parse(comments, ask(api.standin, comments)).posts if p.id == "17912")
        assert answer.reply_to_id == own[0].comments[0].id and answer.conversation_id == own[0].id
        assert _round(Authorised, mine, cursor)[0] == []  # type: ignore[arg-type]
        hashtag = HashtagMedia(api.standin.url, api.user_id, "samsatbanten")
        keys, cursor = _round(Authorised, hashtag, None)  # type: ignore[arg-type]
        assert sorted(keys) == [f"instagram:{m.id}" for m in tagged[:3]]  # the last 24 hours
        assert _round(Authorised, hashtag, cursor)[0] == [] and api.searched == ["samsatbanten"]
    finally:
        api.standin.close()


def test_a_youtube_video_without_comments_or_gone_does_not_stop_the_connector() -> None:
    videos = [
        Video("vidoff", "Banjir Lebak", NOW - timedelta(hours=2), comments_disabled=True),
        Video("vidon", "Banjir Serang", NOW - timedelta(hours=1), comments=[("Ugzon", "parah", NOW, [])]),
    ]
    api = YoutubeApi(videos, page_size=5)
    fetcher = Fetcher("youtube", "PANTAU_YOUTUBE_TOKEN", {}, 2, 1.0)
    try:
        stream = YoutubeSearch(api.standin.url, YoutubeApi.KEY, "banjir")
        keys, cursor = _round(api.standin, stream, None)
        assert sorted(keys) == ["youtube:Ugzon", "youtube:vidoff", "youtube:vidon"]
        # Through HTTP: the 403 commentsDisabled and a 404 for a video deleted since reach the parser.
        assert stream.parse(stream._comments("vidoff"), fetcher.fetch(stream._comments("vidoff"))).posts == []
        api.videos.remove(videos[1])
        assert stream.parse(stream._comments("vidon"), fetcher.fetch(stream._comments("vidon"))).posts == []
        assert _round(api.standin, stream, cursor)[0] == []
        api.quota = api.used  # a spent quota on a comments request still ends the round
        with pytest.raises(QuotaSpent):
            stream.parse(stream._comments("vidoff"), fetcher.fetch(stream._comments("vidoff")))
    finally:
        fetcher.close()
        api.standin.close()


def test_an_empty_or_odd_language_field_is_a_missing_hint_not_a_lost_post() -> None:
    from pipeline.sources.connector import language

    assert [language(v) for v in ("in", "und", "en-US", "zh-Hant")] == ["in", "und", "en-US", "zh-Hant"]
    assert [language(v) for v in ("", "x-klingon", "bahasa indonesia", None, 5)] == [None] * 5
