"""The bulk indexer against the real Elasticsearch, with a fault-injecting proxy in front for what the
embedded server never does on its own: refuse a request as too large, refuse credentials, be down, or
fail one document with 5xx every time."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from pipeline.sinks.elasticsearch import BulkIndexer, IndexAction, async_client
from tests.integration.conftest import Pipeline


class FaultyProxy(ThreadingHTTPServer):
    """Forwards every request to Elasticsearch, except for the faults its attributes switch on."""

    def __init__(self, upstream: str, listen: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Forward, bind_and_activate=False)
        self.server_bind()  # the port is ours from here on; connections are refused until it listens
        self.upstream = upstream.rstrip("/")
        self.max_bulk_bytes: int | None = None  # 413 above this, like http.max_content_length
        self.refuse: list[tuple[int, str, bytes]] = []  # answers for the next bulk requests
        self.item_faults: dict[str, list[int]] = {}  # per id, statuses its next bulk items get instead
        self.bulk_sizes: list[int] = []  # actions per bulk request that reached Elasticsearch
        self.authorization: list[str | None] = []  # the Authorization header of every request
        if listen:
            self.start()

    def start(self) -> None:
        self.server_activate()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def _json_error(status: int, kind: str, reason: str = "injected") -> tuple[int, str, bytes]:
    body = {"error": {"type": kind, "reason": reason}, "status": status}
    return status, "application/json", json.dumps(body).encode()


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

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.authorization.append(self.headers.get("Authorization"))
        bulk = self.path.split("?")[0].endswith("/_bulk")
        if bulk:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            headers = [line for line in lines if set(line) & {"index", "update", "delete", "create"}]
            if self.server.refuse:
                return self._answer(*_reordered(self.server.refuse.pop(0)))
            if self.server.max_bulk_bytes is not None and len(body) > self.server.max_bulk_bytes:
                return self._answer(413, b"")  # as Elasticsearch does: no body at all
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
        if bulk and self.server.item_faults:
            answer = json.loads(payload)
            for item in answer["items"]:
                result = next(iter(item.values()))
                faults = self.server.item_faults.get(result["_id"])
                if faults:
                    result.update(status=faults.pop(0), error={"type": "injected_fault", "reason": "test"})
                    answer["errors"] = True
            payload = json.dumps(answer).encode()
        self._answer(status, payload, content_type.split(";")[0])

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


def _reordered(answer: tuple[int, str, bytes]) -> tuple[int, bytes, str]:
    status, content_type, body = answer
    return status, body, content_type


@pytest.fixture
def proxy(pipeline: Pipeline) -> Iterator[FaultyProxy]:
    server = FaultyProxy(pipeline.endpoints.elasticsearch)
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


def _retries(reason: str) -> float:
    return REGISTRY.get_sample_value("pantau_es_retries_total", {"reason": reason}) or 0.0


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
    assert failures[0].reason  # says something even though the answer had no body
    assert sorted(_docs(pipeline, index)) == sorted(f"d{i}" for i in range(8))
    assert max(proxy.bulk_sizes) < len(actions)


def test_refused_credentials_and_privileges_are_waited_out_not_dead_lettered(
    pipeline: Pipeline, proxy: FaultyProxy
) -> None:
    index = _fresh_index(pipeline)
    # an operator fixes the key after two attempts; a proxy in between answers once with its own 400
    # page; one document's index lacks the privilege for two more attempts
    proxy.refuse = [_json_error(401, "security_exception"), _json_error(401, "security_exception")]
    proxy.refuse.append((400, "text/html", b"<html>400 Bad Request</html>"))
    proxy.item_faults = {"d1": [403, 403]}
    actions = [IndexAction(key=f"d{i}", index=index, source={"n": i}, op="upsert") for i in range(4)]
    before = {reason: _retries(reason) for reason in ("access", "request")}
    assert _index(pipeline, proxy.url, actions) == []
    assert proxy.refuse == [] and proxy.item_faults == {"d1": []}
    # what the worker's metrics endpoint shows: two refused requests + two refused items, one proxy page
    assert _retries("access") - before["access"] == 4 and _retries("request") - before["request"] == 1
    assert sorted(_docs(pipeline, index)) == ["d0", "d1", "d2", "d3"]


def test_a_cluster_that_comes_up_late_gets_everything(pipeline: Pipeline) -> None:
    index = _fresh_index(pipeline)
    down = FaultyProxy(pipeline.endpoints.elasticsearch, listen=False)  # connection refused for now
    timer = threading.Timer(1.5, down.start)
    timer.start()
    try:
        actions = [IndexAction(key=f"d{i}", index=index, source={"n": i}, op="upsert") for i in range(3)]
        assert _index(pipeline, down.url, actions) == []
    finally:
        timer.join()
        down.shutdown()
        down.server_close()
    assert down.bulk_sizes == [3]
    assert sorted(_docs(pipeline, index)) == ["d0", "d1", "d2"]


def test_a_document_failing_with_5xx_every_time_is_given_up_after_max_attempts(
    pipeline: Pipeline, proxy: FaultyProxy
) -> None:
    index = _fresh_index(pipeline)
    proxy.item_faults = {"stuck": [503] * 10, "flaky": [503]}
    keys = ("a", "stuck", "flaky", "b")
    actions = [IndexAction(key=k, index=index, source={"n": 1}, op="upsert") for k in keys]
    failures = _index(pipeline, proxy.url, actions, max_attempts=3)
    assert [(f.key, f.status) for f in failures] == [("stuck", 503)]
    assert "after 3 attempts" in failures[0].reason
    assert proxy.bulk_sizes == [4, 2, 1]  # a and b at once, flaky at its second try, stuck three times


@pytest.mark.parametrize(
    ("credentials", "header"),
    [
        ({"es_api_key": "aWQ6a2V5"}, "ApiKey aWQ6a2V5"),
        ({"es_username": "pantau-worker", "es_password": "s3cret"}, "Basic cGFudGF1LXdvcmtlcjpzM2NyZXQ="),
    ],
)
def test_the_worker_sends_its_elasticsearch_credentials(
    pipeline: Pipeline, proxy: FaultyProxy, credentials: dict[str, str], header: str
) -> None:
    """noida-db answers any credentials, right or wrong, so what can be checked is that they are sent."""
    settings = pipeline.settings.model_copy(
        update={k: SecretStr(v) if "username" not in k else v for k, v in credentials.items()}
    )
    index = _fresh_index(pipeline)

    async def run() -> Any:
        indexer = BulkIndexer(async_client(settings, proxy.url), 0.05, 0.2, 3)
        try:
            return await indexer.index([IndexAction(key="d", index=index, source={"n": 1}, op="upsert")])
        finally:
            await indexer.close()

    assert asyncio.run(run()) == []
    assert proxy.authorization and set(proxy.authorization) == {header}
