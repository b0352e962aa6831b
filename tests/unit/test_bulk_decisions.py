"""BulkIndexer's decisions, driven by a scripted client: what is retried, halved, or given up."""

from __future__ import annotations

import asyncio
from typing import Any

from elastic_transport import ApiResponseMeta, ConnectionError, HttpHeaders, NodeConfig
from elasticsearch import ApiError

from pipeline.sinks.elasticsearch import BulkIndexer, IndexAction


def _error(status: int, body: Any = None) -> ApiError:
    meta = ApiResponseMeta(status, "1.1", HttpHeaders(), 0.0, NodeConfig("http", "localhost", 9200))
    return ApiError("refused", meta, body)


def _item(key: str, status: int, kind: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {"_id": key, "status": status}
    if kind:
        result["error"] = {"type": kind, "reason": "scripted"}
    return {"index": result}


class ScriptedClient:
    """Answers each bulk request with a function of the keys it carries; records every request."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[list[str]] = []

    async def bulk(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        keys = [op["index"]["_id"] for op in operations if "index" in op]
        self.requests.append(keys)
        return dict(self.answer(keys, len(self.requests)))


def _run(client: ScriptedClient, keys: list[str], max_attempts: int = 3) -> list[tuple[str, int]]:
    indexer = BulkIndexer(client, backoff=0.001, backoff_max=0.002, max_attempts=max_attempts)  # type: ignore[arg-type]
    actions = [IndexAction(key=k, index="posts", source={"n": i}) for i, k in enumerate(keys)]
    return [(f.key, f.status) for f in asyncio.run(indexer.index(actions))]


def test_a_request_too_large_is_halved_down_to_the_culprit() -> None:
    def answer(keys: list[str], _: int) -> dict[str, Any]:
        if "big" in keys:
            raise _error(413)  # Elasticsearch answers 413 with no body
        return {"items": [_item(k, 201) for k in keys]}

    client = ScriptedClient(answer)
    assert _run(client, ["a", "b", "big", "c"]) == [("big", 413)]
    assert ["a", "b"] in client.requests and ["c"] in client.requests


def test_a_4xx_item_fails_alone_and_a_5xx_item_is_retried_then_given_up() -> None:
    def answer(keys: list[str], _: int) -> dict[str, Any]:
        status = {"bad": (400, "mapper_parsing_exception"), "sick": (503, "unavailable")}
        return {"items": [_item(k, *status.get(k, (201, ""))) for k in keys]}

    client = ScriptedClient(answer)
    assert sorted(_run(client, ["ok", "bad", "sick"], max_attempts=3)) == [("bad", 400), ("sick", 503)]
    assert client.requests == [["ok", "bad", "sick"], ["sick"], ["sick"]]


def test_429_and_outages_are_waited_out_not_given_up() -> None:
    def answer(keys: list[str], n: int) -> dict[str, Any]:
        if n == 1:
            raise ConnectionError("refused")
        if n == 2:
            raise _error(503, {"error": {"type": "unavailable"}})
        return {"items": [_item(k, 429 if n < 6 and k == "busy" else 201) for k in keys]}

    client = ScriptedClient(answer)
    assert _run(client, ["busy", "calm"], max_attempts=2) == []  # 429 never counts against max_attempts
    assert client.requests[-1] == ["busy"] and len(client.requests) == 6


def test_a_400_without_elasticsearchs_error_object_is_the_setups_fault_and_waited_out() -> None:
    def answer(keys: list[str], n: int) -> dict[str, Any]:
        if n < 3:
            raise _error(400, "<html>proxy says no</html>")
        return {"items": [_item(k, 201) for k in keys]}

    client = ScriptedClient(answer)
    assert _run(client, ["a", "b"]) == []
    assert client.requests == [["a", "b"]] * 3
