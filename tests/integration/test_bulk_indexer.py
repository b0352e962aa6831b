"""The bulk indexer against the real Elasticsearch, with a fault-injecting proxy in front for what the
embedded server never does on its own: refuse a request as too large, refuse credentials, be down, or
fail one document with 5xx every time."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipeline.sinks.elasticsearch import BulkIndexer, IndexAction, async_client
from tests.integration.conftest import Pipeline


class FaultyProxy(ThreadingHTTPServer):
    """Forwards every request to Elasticsearch, except for the faults its attributes switch on."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Forward)
        self.upstream = upstream.rstrip("/")
        self.max_bulk_bytes: int | None = None  # 413 above this, like http.max_content_length
        self.refuse_next = 0  # answer this many bulk requests with 401
        self.failing_ids: set[str] = set()  # bulk items for these ids come back as 503
        self.bulk_sizes: list[int] = []  # actions per bulk request that reached the proxy

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: FaultyProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, kind: str, reason: str) -> None:
        self._answer(
            status, json.dumps({"error": {"type": kind, "reason": reason}, "status": status}).encode()
        )

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        bulk = self.path.split("?")[0].endswith("/_bulk")
        if bulk:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            headers = [line for line in lines if set(line) & {"index", "update", "delete", "create"}]
            if self.server.refuse_next > 0:
                self.server.refuse_next -= 1
                return self._error(401, "security_exception", "unable to authenticate")
            if self.server.max_bulk_bytes is not None and len(body) > self.server.max_bulk_bytes:
                return self._error(413, "content_too_long", f"{len(body)} bytes")
            self.server.bulk_sizes.append(len(headers))
        request = urllib.request.Request(
            self.server.upstream + self.path, data=body or None, method=self.command
        )
        request.add_header("Content-Type", self.headers.get("Content-Type") or "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
                content_type = response.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            status, payload, content_type = exc.code, exc.read(), "application/json"
        if bulk and self.server.failing_ids:
            answer = json.loads(payload)
            for item in answer["items"]:
                result = next(iter(item.values()))
                if result["_id"] in self.server.failing_ids:
                    result.update(
                        status=503, error={"type": "unavailable_shards_exception", "reason": "test"}
                    )
            answer["errors"] = True
            payload = json.dumps(answer).encode()
        self._answer(status, payload, content_type.split(";")[0])

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


def _serve(proxy: FaultyProxy) -> None:
    threading.Thread(target=proxy.serve_forever, daemon=True).start()


@pytest.fixture
def proxy(pipeline: Pipeline) -> Iterator[FaultyProxy]:
    server = FaultyProxy(pipeline.endpoints.elasticsearch)
    _serve(server)
    yield server
    server.shutdown()
    server.server_close()


def _index(pipeline: Pipeline, url: str, actions: list[IndexAction], max_attempts: int = 3) -> Any:
    async def run() -> Any:
        indexer = BulkIndexer(async_client(pipeline.settings, url), 0.05, 0.2, max_attempts)
        try:
            return await indexer.index(actions)
        finally:
            await indexer.close()

    return asyncio.run(run())


def _fresh_index(pipeline: Pipeline) -> str:
    name = f"test-bulk-{uuid.uuid4().hex[:8]}"
    pipeline.es.indices.create(index=name, mappings={"properties": {"n": {"type": "integer"}}})
    return name


def _docs(pipeline: Pipeline, index: str) -> dict[str, dict[str, Any]]:
    pipeline.es.indices.refresh(index=index)
    hits = pipeline.es.search(index=index, size=100)["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def test_a_document_the_mapping_refuses_fails_alone(pipeline: Pipeline) -> None:
    index = _fresh_index(pipeline)
    actions = [IndexAction(key=f"d{i}", index=index, source={"n": i}, op="upsert") for i in range(3)]
    actions.append(IndexAction(key="bad", index=index, source={"n": "not a number"}, op="upsert"))
    failures = _index(pipeline, pipeline.endpoints.elasticsearch, actions)
    assert [(f.key, f.status) for f in failures] == [("bad", 400)]
    assert sorted(_docs(pipeline, index)) == ["d0", "d1", "d2"]


def test_upsert_keeps_fields_written_by_others(pipeline: Pipeline) -> None:
    index = _fresh_index(pipeline)
    url = pipeline.endpoints.elasticsearch
    assert _index(pipeline, url, [IndexAction(key="p", index=index, source={"n": 1}, op="upsert")]) == []
    label = IndexAction(key="p", index=index, source={"topic": {"id": "t1"}}, op="update")
    assert _index(pipeline, url, [label]) == []
    # the same post delivered again, as at-least-once delivery does
    assert _index(pipeline, url, [IndexAction(key="p", index=index, source={"n": 2}, op="upsert")]) == []
    assert _docs(pipeline, index)["p"] == {"n": 2, "topic": {"id": "t1"}}


def test_a_request_too_large_is_halved_until_only_the_culprit_is_refused(
    pipeline: Pipeline, proxy: FaultyProxy
) -> None:
    index = _fresh_index(pipeline)
    actions = [IndexAction(key=f"d{i}", index=index, source={"n": i}, op="upsert") for i in range(8)]
    actions.insert(5, IndexAction(key="huge", index=index, source={"n": 1, "pad": "x" * 4000}, op="upsert"))
    proxy.max_bulk_bytes = 2000
    failures = _index(pipeline, proxy.url, actions)
    assert [(f.key, f.status) for f in failures] == [("huge", 413)]
    assert "content_too_long" in failures[0].reason
    assert sorted(_docs(pipeline, index)) == sorted(f"d{i}" for i in range(8))
    assert max(proxy.bulk_sizes) < len(actions)


def test_refused_credentials_are_waited_out_not_dead_lettered(pipeline: Pipeline, proxy: FaultyProxy) -> None:
    index = _fresh_index(pipeline)
    proxy.refuse_next = 3  # an operator fixes the key after three attempts
    actions = [IndexAction(key=f"d{i}", index=index, source={"n": i}, op="upsert") for i in range(4)]
    assert _index(pipeline, proxy.url, actions) == []
    assert proxy.refuse_next == 0
    assert sorted(_docs(pipeline, index)) == ["d0", "d1", "d2", "d3"]


def test_a_cluster_that_comes_up_late_gets_everything(pipeline: Pipeline) -> None:
    index = _fresh_index(pipeline)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started: list[FaultyProxy] = []

    def come_up() -> None:
        started.append(FaultyProxy(pipeline.endpoints.elasticsearch, port))
        _serve(started[0])

    timer = threading.Timer(1.5, come_up)
    timer.start()
    try:
        actions = [IndexAction(key=f"d{i}", index=index, source={"n": i}, op="upsert") for i in range(3)]
        assert _index(pipeline, f"http://127.0.0.1:{port}", actions) == []
    finally:
        timer.join()
        for server in started:
            server.shutdown()
            server.server_close()
    assert sorted(_docs(pipeline, index)) == ["d0", "d1", "d2"]


def test_a_document_failing_with_5xx_every_time_is_given_up_after_max_attempts(
    pipeline: Pipeline, proxy: FaultyProxy
) -> None:
    index = _fresh_index(pipeline)
    proxy.failing_ids = {"stuck"}
    actions = [IndexAction(key=k, index=index, source={"n": 1}, op="upsert") for k in ("a", "stuck", "b")]
    failures = _index(pipeline, proxy.url, actions, max_attempts=3)
    assert [(f.key, f.status) for f in failures] == [("stuck", 503)]
    assert "after 3 attempts" in failures[0].reason
    assert proxy.bulk_sizes == [3, 1, 1]  # the others went through at the first request
