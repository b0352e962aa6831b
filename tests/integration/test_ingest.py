"""Connectors end to end against loopback stand-ins of the platforms and the session's real broker: every
post arrives once with its key, a connector killed mid-run resumes from its cursor, a second round asks
with its cursor and adds nothing, refused credentials stop with one line."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from pipeline.kafka.config import kafka_python_config
from pipeline.sources.ids import uri_id
from pipeline.sources.mastodon import snowflake_at
from pipeline.sources.xstream import id_at
from tests.integration.conftest import Pipeline
from tests.standins import (
    Answer,
    Article,
    FacebookApi,
    GraphItem,
    InstagramApi,
    MastodonApi,
    Media,
    NewsFeed,
    Toot,
    Tweet,
    Video,
    XApi,
    YoutubeApi,
    rate_limited,
    unavailable,
)

NOW = datetime.now(UTC).replace(microsecond=0)


class Ingest:
    """``pantau ingest`` as a user runs it, with a private run directory and private topics on the
    session's broker (the session's worker does not consume them)."""

    def __init__(self, pipeline: Pipeline, tmp_path: Path, **settings: str) -> None:
        self.pipeline = pipeline
        self.raw = f"test-ingest-raw-{uuid.uuid4().hex[:8]}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")},
            "PANTAU_RUN_DIR": str(tmp_path / "run"),
            "PANTAU_KAFKA_BOOTSTRAP": pipeline.endpoints.kafka,
            "PANTAU_ES_URL": pipeline.endpoints.elasticsearch,
            "PANTAU_TOPIC_RAW": self.raw,
            "PANTAU_TOPIC_INGEST_CURSORS": f"test-ingest-cursors-{uuid.uuid4().hex[:8]}",
            "PANTAU_INGEST_BACKOFF_MAX": "1",
            "COLUMNS": "200",
            **settings,
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "ingest", *args],
            capture_output=True,
            text=True,
            timeout=180,
            env=self.env,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "ingest", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def messages(self) -> list[tuple[str, Any]]:
        """Every message of the private raw topic: (key, value); value None for a tombstone."""
        consumer = KafkaConsumer(
            **kafka_python_config(self.pipeline.settings, self.pipeline.endpoints.kafka),
            enable_auto_commit=False,
        )
        try:
            partitions = [TopicPartition(self.raw, p) for p in consumer.partitions_for_topic(self.raw) or []]
            if not partitions:
                return []  # not created yet
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            found: list[tuple[str, Any]] = []
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < 3:
                for records in consumer.poll(timeout_ms=500).values():
                    quiet_since = time.monotonic()
                    found += [
                        (r.key.decode(), None if r.value is None else json.loads(r.value)) for r in records
                    ]
            return found
        finally:
            consumer.close()

    def cursors(self, connector: str) -> dict[str, Any]:
        path = Path(self.env["PANTAU_RUN_DIR"]) / "ingest" / f"{connector}.cursors.json"
        return {k: v["cursor"] for k, v in json.loads(path.read_text()).items()}


def _processes(run_dir: Path, word: bytes) -> list[int]:
    """Processes of ``run_dir`` whose command line has ``word`` (one that ends meanwhile is left out)."""
    from tests.integration.conftest import processes_of

    found = []
    for pid in processes_of(run_dir):
        try:
            if word in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def _queries_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "queries.yaml"
    path.write_text(text)
    return str(path)


def test_x_sends_every_post_once_resumes_after_a_kill_and_then_asks_with_since_id(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    tweets = [
        Tweet(
            1000 + i,
            f"antrean samsat cikokol panjang {i}",
            NOW - timedelta(hours=8 - i),
            query_word="cikokol",
        )
        for i in range(8)
    ]
    tweets.append(Tweet(2000, "gempa di luar banten", NOW, query_word="gempa"))  # another query's
    api = XApi(tweets, page_size=3)
    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_X_API_BASE=api.standin.url,
        PANTAU_X_BEARER_TOKEN=XApi.TOKEN,
        PANTAU_QUERIES_FILE=_queries_file(tmp_path, "replace: true\nadd:\n  specific: [samsat cikokol]\n"),
    )
    try:
        # A 429 with its reset and a 503 first; the third page is held until the connector is killed.
        api.standin.faults = [rate_limited(reset_in=1), unavailable()]
        api.standin.hold = lambda seen: seen.params.get("next_token", "").startswith("bzo2")  # offset 6
        process = ingest.start("x", "--once")
        assert api.standin.held.wait(90), process.communicate(timeout=5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        api.standin.hold = None
        api.standin.release.set()
        saved = ingest.cursors("x")
        ((cursor),) = saved.values()
        assert cursor["next_token"] and cursor["newest_id"] == "1007" and "start_time" in cursor
        assert len(ingest.messages()) == 6  # two pages acknowledged before the cursor moved past them

        api.standin.seen.clear()
        result = ingest.run("x", "--once")
        assert result.returncode == 0, result.stderr
        assert api.standin.seen[0].params["next_token"] == cursor["next_token"]
        assert api.standin.seen[0].params["start_time"] == cursor["start_time"]
        assert '("samsat cikokol") -is:retweet' in result.stderr  # the query is logged at start

        messages = ingest.messages()
        keys = Counter(key for key, _ in messages)
        assert keys == Counter({f"x:{t.id}": 1 for t in tweets[:8]})
        value = dict(messages)["x:1000"]
        assert value["platform"] == "x" and value["id"] == "1000"
        assert value["author"] == {"id": "2244994945", "handle": "samsatbanten", "name": "Samsat Banten"}
        assert value["url"] == "https://x.com/samsatbanten/status/1000"
        assert value["metrics"] == {"likes": 3, "replies": 2, "shares": 2, "views": 40}
        assert value["conversation_id"] == "1000"

        api.standin.seen.clear()
        again = ingest.run("x", "--once")
        assert again.returncode == 0, again.stderr
        assert [s.params.get("since_id") for s in api.standin.seen] == ["1007"]
        assert "sent 0" in again.stderr and len(ingest.messages()) == 8

        # The broker lost its topics (the embedded one does on restart): the run directory's copy is used.
        ingest.env["PANTAU_TOPIC_INGEST_CURSORS"] = f"test-ingest-cursors-{uuid.uuid4().hex[:8]}"
        api.standin.seen.clear()
        restored = ingest.run("x", "--once")
        assert restored.returncode == 0, restored.stderr
        assert [s.params.get("since_id") for s in api.standin.seen] == ["1007"]

        status = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "ingest", "status", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=ingest.env,
        )
        (metrics,) = [json.loads(line) for line in status.stdout.splitlines()]
        assert metrics["connector"] == "x" and metrics["state"] == "stopped"
        assert list(metrics["cursors"].values()) == [{"since_id": "1007"}]
        assert metrics["quota"]["used"] >= 3
    finally:
        api.standin.close()


def test_refused_credentials_stop_the_connector_with_one_line(pipeline: Pipeline, tmp_path: Path) -> None:
    api = XApi([])
    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_X_API_BASE=api.standin.url,
        PANTAU_X_BEARER_TOKEN="expired",
        PANTAU_QUERIES_FILE=_queries_file(tmp_path, "replace: true\nadd:\n  specific: [samsat cikokol]\n"),
    )
    try:
        result = ingest.run("x")  # without --once too: a refused credential is not retried
        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: x: 401 Unauthorized") and "PANTAU_X_BEARER_TOKEN" in last
        assert "Traceback" not in result.stderr and "expired" not in result.stderr
        assert len(api.standin.seen) == 1
    finally:
        api.standin.close()


def test_mastodon_and_news_send_every_post_once_and_a_second_round_adds_nothing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    start = NOW - timedelta(days=3)
    toots = [
        Toot(
            int(snowflake_at(start + timedelta(hours=i))) + 7,
            f"https://social.example/users/warga/statuses/{i}",
            f"<p>PDAM mati lagi di Serang {i} #banten</p>",
            start + timedelta(hours=i),
        )
        for i in range(5)
    ]
    toots[3].in_reply_to = toots[1].id  # a reply: linked by the parent's URI, not the instance's id
    mastodon = MastodonApi(toots, page_size=2)
    articles = [
        Article(
            f"https://news.example/banten/{i}", f"Banjir di Lebak {i}", "BPBD turun", NOW - timedelta(hours=i)
        )
        for i in range(3)
    ]
    news = NewsFeed(articles)
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(f"# Banten portals\n{news.standin.url}/rss\n")
    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_MASTODON_API_BASE=mastodon.standin.url,
        PANTAU_RSS_FEEDS_FILE=str(feeds),
        PANTAU_QUERIES_FILE=_queries_file(tmp_path, "replace: true\nadd:\n  hashtags: [banten]\n"),
    )
    try:
        mastodon.standin.faults = [unavailable()]
        for command in ("mastodon", "rss"):
            result = ingest.run(command, "--once")
            assert result.returncode == 0, result.stderr
        keys = Counter(key for key, _ in ingest.messages())
        expected = [f"mastodon:{uri_id(t.uri)}" for t in toots] + [f"news:{uri_id(a.guid)}" for a in articles]
        assert keys == Counter(dict.fromkeys(expected, 1))
        value = dict(ingest.messages())[f"news:{uri_id(articles[0].guid)}"]
        assert value["text"] == "Banjir di Lebak 0\n\nBPBD turun" and value["url"] == articles[0].guid
        reply = dict(ingest.messages())[f"mastodon:{uri_id(toots[3].uri)}"]
        assert reply["reply_to_id"] == reply["conversation_id"] == uri_id(toots[1].uri)

        mastodon.standin.seen.clear()
        news.standin.seen.clear()
        for command in ("mastodon", "rss"):
            result = ingest.run(command, "--once")
            assert result.returncode == 0, result.stderr
        timeline = [s.params["min_id"] for s in mastodon.standin.seen if "/timelines/" in s.path]
        assert timeline == [str(toots[-1].id)]
        assert news.standin.seen[0].headers["if-none-match"] == news.etag
        assert len(ingest.messages()) == len(expected)
        # The author deletes a toot: the next round finds it gone and sends its tombstone, once.
        gone = toots[2]
        mastodon.toots.remove(gone)  # the stand-in's list is this list
        for _ in range(2):
            result = ingest.run("mastodon", "--once")
            assert result.returncode == 0, result.stderr
        messages = ingest.messages()
        assert len(messages) == len(expected) + 1
        assert [m for m in messages if m[1] is None] == [(f"mastodon:{uri_id(gone.uri)}", None)]
        # An answer not shaped as documented (a proxy's HTML page with 200) fails the round in one line,
        # no traceback; the next round starts from the cursor and loses nothing.
        toots.append(
            Toot(int(snowflake_at(NOW)) + 7, "https://social.example/s/new", "<p>PDAM baru</p>", NOW)
        )
        mastodon.standin.faults = [Answer(200, b"<html>maintenance</html>", {"content-type": "text/html"})]
        result = ingest.run("mastodon", "--once")
        assert result.returncode == 1 and "unexpected answer" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "maintenance" in result.stderr
        result = ingest.run("mastodon", "--once")
        assert result.returncode == 0, result.stderr
        assert Counter(key for key, _ in ingest.messages())[f"mastodon:{uri_id(toots[-1].uri)}"] == 1
        # A dead feed listed first does not starve the feeds after it: they are read, the dead one named.
        fresh = Article(
            "https://news.example/banten/baru", "Jalan putus di Lebak", "BPBD turun", datetime.now(UTC)
        )
        articles.insert(0, fresh)
        feeds.write_text(f"{mastodon.standin.url}/rss-gone\n{news.standin.url}/rss\n")
        result = ingest.run("rss", "--once")
        assert result.returncode == 1 and "/rss-gone" in result.stderr, result.stderr
        assert Counter(key for key, _ in ingest.messages())[f"news:{uri_id(fresh.guid)}"] == 1
    finally:
        mastodon.standin.close()
        news.standin.close()


def test_youtube_and_facebook_send_posts_and_comments_once_and_a_second_round_adds_nothing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    videos = [
        Video(
            f"vid{i}",
            f"Banjir Lebak {i}",
            NOW - timedelta(days=i),
            comments=[(f"Ugz{i}{x}", f"komentar {x}", NOW - timedelta(hours=3), []) for x in "abc"],
        )
        for i in range(3)
    ]
    youtube = YoutubeApi(videos, page_size=2)
    posts = [
        GraphItem(
            f"77_{i}",
            f"Pengumuman PDAM {i}",
            NOW - timedelta(days=i),
            author=("77", "PDAM TKR"),
            comments=[
                GraphItem(f"77_{i}_{j}", f"air mati {j}", NOW - timedelta(hours=j + 1)) for j in range(3)
            ],
        )
        for i in range(2)
    ]
    facebook = FacebookApi("77", posts, page_size=2)
    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_YOUTUBE_API_BASE=youtube.standin.url,
        PANTAU_YOUTUBE_TOKEN=YoutubeApi.KEY,
        PANTAU_FACEBOOK_API_BASE=facebook.standin.url,
        PANTAU_FACEBOOK_TOKEN=FacebookApi.TOKEN,
        PANTAU_FACEBOOK_PAGES='["77"]',
        PANTAU_QUERIES_FILE=_queries_file(tmp_path, "replace: true\nadd:\n  specific: [banjir lebak]\n"),
    )
    try:
        youtube.standin.faults = [unavailable()]
        for command in ("youtube", "facebook"):
            result = ingest.run(command, "--once")
            assert result.returncode == 0, result.stderr
        expected = (
            [f"youtube:{v.id}" for v in videos]
            + [f"youtube:Ugz{i}{x}" for i in range(3) for x in "abc"]
            + [f"facebook:{p.id}" for p in posts]
            + [f"facebook:{c.id}" for p in posts for c in p.comments]
        )
        messages = ingest.messages()
        assert Counter(key for key, _ in messages) == Counter(dict.fromkeys(expected, 1))
        comment = dict(messages)["facebook:77_1_0"]
        assert comment["reply_to_id"] == "77_1" and comment["conversation_id"] == "77_1"
        units = youtube.used
        for command in ("youtube", "facebook"):
            result = ingest.run(command, "--once")
            assert result.returncode == 0, result.stderr
        assert len(ingest.messages()) == len(expected)
        assert youtube.used - units == 100 + 3  # one search, no video new, each video's newest threads
        # A comment on a video found in an earlier round: read by the next round, sent once.
        late = datetime.now(UTC).replace(microsecond=0)  # after the last round began (in whole seconds)
        videos[1].comments.insert(0, ("Ugz1late", "air masih naik", late, [("Ugz1late.r", "BPBD?", late)]))
        # A round reads from the second the previous one began, that second included (YouTube stamps whole
        # seconds): a comment written in the very second a round starts is read by that round and the next,
        # a harmless repeat of one key. Start the rounds in a later second, as a comment written between
        # rounds is.
        time.sleep(max(0.0, (late + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()))
        for _ in range(2):
            result = ingest.run("youtube", "--once")
            assert result.returncode == 0, result.stderr
        keys = Counter(key for key, _ in ingest.messages())
        assert keys["youtube:Ugz1late"] == 1 and keys["youtube:Ugz1late.r"] == 1
        assert sum(keys.values()) == len(expected) + 2
    finally:
        youtube.standin.close()
        facebook.standin.close()


def test_instagram_sends_hashtag_media_own_media_and_comments_once_and_then_only_new_comments(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    agency = ("17841400000000001", "samsatbanten")
    own = [
        Media(
            f"1790000000000000{i}",
            f"Info pajak kendaraan {i}",
            NOW - timedelta(days=i + 1),
            comments=[GraphItem(f"1791000000000000{i}", "kapan buka?", NOW - timedelta(hours=5))],
        )
        for i in range(3)
    ]
    own[0].comments.append(
        GraphItem(
            "17912000000000000",
            "Buka jam 8",
            NOW - timedelta(hours=4),
            author=agency,
            parent=own[0].comments[0].id,
        )
    )
    others = [
        Media(
            f"1795000000000000{i}",
            f"Antre lama di #samsatbanten {i}",
            NOW - timedelta(hours=i + 1),
            ["samsatbanten"],
        )
        for i in range(3)
    ]
    others.append(
        Media("17959999999999999", "kemarin lusa #samsatbanten", NOW - timedelta(days=2), ["samsatbanten"])
    )
    api = InstagramApi("17841499999999999", own, others, page_size=2)
    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_INSTAGRAM_API_BASE=api.standin.url,
        PANTAU_INSTAGRAM_TOKEN=InstagramApi.TOKEN,
        PANTAU_INSTAGRAM_USER_ID=api.user_id,
        PANTAU_QUERIES_FILE=_queries_file(tmp_path, "replace: true\nadd:\n  hashtags: [samsatbanten]\n"),
    )
    try:
        api.standin.faults = [unavailable(), rate_limited(reset_in=1)]
        result = ingest.run("instagram", "--once")
        assert result.returncode == 0, result.stderr
        expected = (
            [f"instagram:{m.id}" for m in own]
            + [f"instagram:{c.id}" for m in own for c in m.comments]
            + [f"instagram:{m.id}" for m in others[:3]]  # recent_media: the last 24 hours only
        )
        messages = ingest.messages()
        assert Counter(key for key, _ in messages) == Counter(dict.fromkeys(expected, 1))
        answer = dict(messages)["instagram:17912000000000000"]
        assert answer["reply_to_id"] == own[0].comments[0].id and answer["conversation_id"] == own[0].id
        assert answer["author"]["handle"] == "samsatbanten"

        result = ingest.run("instagram", "--once")
        assert result.returncode == 0, result.stderr
        assert len(ingest.messages()) == len(expected) and api.searched == ["samsatbanten"]  # id kept
        # A comment on the agency's older post comes in with the next round, once.
        late = GraphItem("17913000000000000", "masih antre", datetime.now(UTC).replace(microsecond=0))
        own[2].comments.append(late)
        result = ingest.run("instagram", "--once")
        assert result.returncode == 0, result.stderr
        keys = Counter(key for key, _ in ingest.messages())
        assert keys[f"instagram:{late.id}"] == 1 and sum(keys.values()) == len(expected) + 1

        wrong = Ingest(pipeline, tmp_path, **{**ingest.env, "PANTAU_INSTAGRAM_TOKEN": "nope"})
        result = wrong.run("instagram", "--once")
        assert result.returncode == 1 and "PANTAU_INSTAGRAM_TOKEN" in result.stderr, result.stderr
    finally:
        api.standin.close()


def test_the_push_endpoint_answers_after_the_broker_acked(pipeline: Pipeline, tmp_path: Path) -> None:
    import http.client

    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_INGEST_TOKEN="s3cret",
        PANTAU_INGEST_PORT="0",
        PANTAU_INGEST_HOST="127.0.0.1",
        PANTAU_META_APP_SECRET="app-secret",
        PANTAU_META_VERIFY_TOKEN="verify-me",
    )
    process = ingest.start("serve")
    try:
        assert process.stderr is not None
        line = ""
        deadline = time.monotonic() + 60
        while "listening on" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line or process.poll() is None, process.communicate(timeout=5)
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])

        def post(
            body: bytes, token: str | None = "s3cret", kind: str = "application/x-ndjson"
        ) -> tuple[int, Any]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"content-type": kind}
            if token:
                headers["authorization"] = f"Bearer {token}"
            try:
                connection.request("POST", "/ingest", body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                return answer.status, json.loads(data) if data else None
            except (BrokenPipeError, ConnectionResetError):
                return -1, None
            finally:
                connection.close()

        post_a = {
            "id": "p1",
            "platform": "other",
            "text": "PDAM mati di Ciledug",
            "created_at": NOW.isoformat(),
        }
        body = "\n".join([json.dumps(post_a), '{"id": "p2"}', json.dumps({**post_a, "id": "p3"})]).encode()
        status, answer = post(body)
        assert status == 202, answer
        assert answer["accepted"] == 2 and [r["line"] for r in answer["rejected"]] == [2]
        assert sorted(key for key, _ in ingest.messages()) == ["other:p1", "other:p3"]  # there once answered

        status, answer = post(b'{"id": "p4"}', kind="application/json")
        assert status == 400 and answer["accepted"] == 0 and answer["rejected"][0]["line"] == 1
        assert post(body, token=None)[0] == 401 and post(body, token="wrong")[0] == 401
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:  # the body is never read
            raw.sendall(
                b"POST /ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
                b"Content-Type: application/x-ndjson\r\nContent-Length: 10485761\r\n\r\n" + b" " * 65536
            )
            assert raw.recv(4096).startswith(b"HTTP/1.1 413 ")
        assert len(ingest.messages()) == 2
        # A Facebook Page's webhook reports a comment removed: its tombstone, after the broker's ack.
        change = {"item": "comment", "verb": "remove", "comment_id": "77_1_2", "post_id": "77_1"}
        delivery = json.dumps(
            {"object": "page", "entry": [{"id": "77", "changes": [{"field": "feed", "value": change}]}]}
        )
        signature = "sha256=" + hmac.new(b"app-secret", delivery.encode(), hashlib.sha256).hexdigest()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request(
                "POST",
                "/webhooks/meta",
                body=delivery,
                headers={"content-type": "application/json", "x-hub-signature-256": signature},
            )
            answer = connection.getresponse()
            assert (answer.status, json.loads(answer.read())) == (200, {"removed": 1})
        finally:
            connection.close()
        messages = ingest.messages()
        assert len(messages) == 3 and [m for m in messages if m[1] is None] == [("facebook:77_1_2", None)]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_ingest_all_runs_the_sources_file_s_connectors_and_restarts_one_that_dies(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    import http.client

    from tests.integration.conftest import processes_of

    articles = [
        Article("https://news.example/a", "Sampah menumpuk di Cilegon", "DLH", NOW - timedelta(hours=1))
    ]
    news = NewsFeed(articles)
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(f"{news.standin.url}/rss\n")
    sources = tmp_path / "sources.yaml"
    sources.write_text("connectors: [rss, serve]\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_SOURCES_FILE=str(sources),
        PANTAU_RSS_FEEDS_FILE=str(feeds),
        PANTAU_INGEST_POLL_INTERVAL="1",
        PANTAU_INGEST_TOKEN="s3cret",
        PANTAU_INGEST_HOST="127.0.0.1",
        PANTAU_INGEST_PORT=str(port),
    )
    run_dir = Path(ingest.env["PANTAU_RUN_DIR"])
    process = ingest.start("all")

    def serve_answers() -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def wait(condition: Any, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.3)

    try:
        wait(serve_answers, "the push endpoint never answered")
        wait(lambda: len(ingest.messages()) == 1, "the feed's post never arrived")
        serve = _processes(run_dir, b"serve")
        assert len(serve) == 1
        os.kill(serve[0], signal.SIGKILL)
        wait(lambda: not serve_answers(), "the killed endpoint still answered", 10)
        wait(serve_answers, "the endpoint was not started again")
        assert len(ingest.messages()) == 1  # the feed, polled every second, sent its post once
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        news.standin.close()
    assert processes_of(run_dir) == []


def test_pantau_up_starts_the_connectors_and_down_stops_them(pipeline: Pipeline, tmp_path: Path) -> None:
    from pipeline.sources.services import stop_background

    news = NewsFeed(
        [Article("https://news.example/up", "Antrean RSUD Serang", "warga", NOW - timedelta(hours=2))]
    )
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(f"{news.standin.url}/rss\n")
    sources = tmp_path / "sources.yaml"
    sources.write_text("connectors: [rss]\n")
    ingest = Ingest(pipeline, tmp_path, PANTAU_SOURCES_FILE=str(sources), PANTAU_RSS_FEEDS_FILE=str(feeds))
    # `pantau up` of the session's stack (it finds the servers and the worker running), with a sources file.
    ingest.env["PANTAU_RUN_DIR"] = str(pipeline.settings.run_dir)
    for name in ("PANTAU_KAFKA_BOOTSTRAP", "PANTAU_ES_URL"):
        ingest.env.pop(name)
    try:
        up = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "up"],
            capture_output=True,
            text=True,
            timeout=300,
            env=ingest.env,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        assert "connectors     rss (pid" in up.stdout, up.stdout
        deadline = time.monotonic() + 60
        while len(ingest.messages()) < 1:
            assert time.monotonic() < deadline, (
                pipeline.settings.run_dir / "logs" / "connectors.log"
            ).read_text()
        again = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "up"],
            capture_output=True,
            text=True,
            timeout=300,
            env=ingest.env,
        )
        assert "connectors     already running" in again.stdout, again.stdout
        connectors = _processes(pipeline.settings.run_dir, b"ingest")
        assert len(connectors) == 2  # `pantau ingest all` and its `pantau ingest rss`
    finally:
        assert stop_background(pipeline.settings)  # what `pantau down` does first
        news.standin.close()
    assert _processes(pipeline.settings.run_dir, b"ingest") == []


def test_x_stream_keeps_its_rules_and_fills_the_gap_of_a_disconnect(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    from pipeline.sources.xstream import GAP_MARGIN, id_time, rule_tag

    def tweet(minutes_ago: float, text: str, searchable: bool = False) -> Tweet:
        at = NOW - timedelta(minutes=minutes_ago)
        return Tweet(int(id_at(at)) + 5, text, at, query_word="cikokol" if searchable else "")

    before = tweet(120, "samsat cikokol antre sejak pagi", searchable=True)
    s1, s2 = tweet(15, "stream: samsat cikokol 1"), tweet(10, "stream: samsat cikokol 2")
    missed = tweet(5, "samsat cikokol ditulis saat terputus", searchable=True)
    s3 = tweet(1, "stream: samsat cikokol 3")
    api = XApi([before])
    # a broken line, a line over the limit and a well-formed message that is no tweet are skipped, and
    # the stream goes on
    too_long = b"x" * (1024 * 1024 + 10) + b"\r\n"
    api.connections = [[s1, b"{not json\r\n", too_long, b'{"data": [1, 2]}\r\n', s2], [s3]]
    api.written_while_away = {0: [missed]}
    query = '("samsat cikokol") -is:retweet'
    api.rules = [
        {"id": "11", "value": "kucing lucu", "tag": "another-app"},
        {"id": "12", "value": "old", "tag": "pantau:0123456789abcdef"},
    ]
    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_X_API_BASE=api.standin.url,
        PANTAU_X_BEARER_TOKEN=XApi.TOKEN,
        PANTAU_QUERIES_FILE=_queries_file(tmp_path, "replace: true\nadd:\n  specific: [samsat cikokol]\n"),
    )
    process = ingest.start("x", "--stream")
    try:
        deadline = time.monotonic() + 90
        while len({key for key, _ in ingest.messages()}) < 5:
            assert time.monotonic() < deadline and process.poll() is None, (
                process.poll(),
                [key for key, _ in ingest.messages()],
            )
        assert {key for key, _ in ingest.messages()} == {f"x:{t.id}" for t in (before, s1, s2, missed, s3)}
        assert api.rules == [
            {"id": "11", "value": "kucing lucu", "tag": "another-app"},
            {"id": api.rules[1]["id"], "value": query, "tag": rule_tag(query)},
        ]
        searches = [s.params for s in api.standin.seen if s.path == "/2/tweets/search/recent"]
        assert "start_time" in searches[0]
        assert searches[1]["since_id"] == id_at(id_time(str(s2.id)) - GAP_MARGIN)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=90)
        api.standin.close()
    assert process.returncode == 0, err


def test_a_deletion_pushed_for_an_indexed_post_removes_it_and_tombstones_the_enriched_topic(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    import http.client

    from pipeline.tracking import wait_processed
    from tests.integration.conftest import make_post

    key = pipeline.send_post(make_post("Samsat Cikokol antre panjang, tolong ditambah loket"))
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [key], timeout=180)
    assert tally.indexed == 1, tally
    assert pipeline.document(key)["text"].startswith("Samsat Cikokol")
    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_INGEST_TOKEN="s3cret",
        PANTAU_INGEST_PORT="0",
        PANTAU_INGEST_HOST="127.0.0.1",
        PANTAU_TOPIC_RAW=pipeline.settings.topic_raw,
    )
    process = ingest.start("serve")
    try:
        assert process.stderr is not None
        line = ""
        while "listening on" not in line:
            line = process.stderr.readline()
            assert line, process.communicate(timeout=5)
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        platform, post_id = key.split(":", 1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"id": post_id, "platform": platform, "deleted": True})
        connection.request(
            "POST",
            "/ingest",
            body=body,
            headers={"authorization": "Bearer s3cret", "content-type": "application/json"},
        )
        answer = connection.getresponse()
        assert answer.status == 202 and json.loads(answer.read())["accepted"] == 1
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    deadline = time.monotonic() + 120
    while True:
        pipeline.es.indices.refresh(index=pipeline.settings.index_alias)
        found = pipeline.es.search(index=pipeline.settings.index_alias, query={"ids": {"values": [key]}})
        if not found["hits"]["hits"]:
            break
        assert time.monotonic() < deadline, "the deleted post is still in the index"
        time.sleep(1)
    consumer = KafkaConsumer(
        **kafka_python_config(pipeline.settings, pipeline.endpoints.kafka), enable_auto_commit=False
    )
    try:
        topic = pipeline.settings.topic_enriched
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        values = []
        idle = time.monotonic()
        while time.monotonic() - idle < 3:
            for records in consumer.poll(timeout_ms=500).values():
                idle = time.monotonic()
                values += [r.value for r in records if r.key == key.encode()]
    finally:
        consumer.close()
    assert len(values) == 2 and values[0] is not None and values[1] is None  # the post, then its tombstone


def test_x_compliance_removes_the_posts_x_reports_deleted(pipeline: Pipeline, tmp_path: Path) -> None:
    from pipeline.tracking import wait_processed
    from tests.integration.conftest import make_post

    base = int(id_at(NOW))
    kept = make_post("Samsat Balaraja buka sampai sore, mantap", id=str(base + 1))
    gone = make_post("Samsat Balaraja lama banget, nama saya Budi", id=str(base + 2))
    keys = [pipeline.send_post(kept), pipeline.send_post(gone)]
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, keys, timeout=180)
    assert tally.indexed == 2, tally
    api = XApi([])
    api.deleted = {gone["id"]: "deleted"}
    ingest = Ingest(
        pipeline,
        tmp_path,
        PANTAU_X_API_BASE=api.standin.url,
        PANTAU_X_BEARER_TOKEN=XApi.TOKEN,
        PANTAU_TOPIC_RAW=pipeline.settings.topic_raw,
        PANTAU_INDEX_PREFIX=pipeline.settings.index_prefix,
        PANTAU_QUERIES_FILE=_queries_file(tmp_path, "replace: true\nadd:\n  specific: [samsat balaraja]\n"),
    )
    try:
        result = ingest.run("x", "--compliance", "--once")
        assert result.returncode == 0, result.stderr
        assert "1 posts X reports gone" in result.stderr
        assert {kept["id"], gone["id"]} <= set(api.uploaded)
    finally:
        api.standin.close()
    deadline = time.monotonic() + 120
    while True:
        pipeline.es.indices.refresh(index=pipeline.settings.index_alias)
        found = pipeline.es.search(index=pipeline.settings.index_alias, query={"ids": {"values": keys}})
        ids = {hit["_id"] for hit in found["hits"]["hits"]}
        if ids == {keys[0]}:
            break
        assert time.monotonic() < deadline, ids
        time.sleep(1)
