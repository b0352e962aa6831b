"""Session fixtures: the real embedded Kafka and Elasticsearch, and a real worker process."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from kafka import KafkaProducer

from pipeline.embedded.stack import EmbeddedStack, Endpoints, wait_for_worker_log
from pipeline.kafka.producer import make_producer
from pipeline.settings import Settings, get_settings
from pipeline.sinks.elasticsearch import sync_client


class Pipeline:
    """Handle on the running stack for tests: produce, wait, read back."""

    def __init__(self, settings: Settings, stack: EmbeddedStack, endpoints: Endpoints) -> None:
        self.settings = settings
        self.stack = stack
        self.endpoints = endpoints
        self.es: Elasticsearch = sync_client(settings, endpoints.elasticsearch)
        self.producer: KafkaProducer = make_producer(settings, endpoints.kafka)

    def send_raw(self, value: bytes, key: bytes | None = None) -> None:
        self.producer.send(self.settings.topic_raw, key=key, value=value).get(timeout=30)

    def send_post(self, post: dict[str, Any]) -> str:
        key = f"{post['platform']}:{post['id']}"
        self.send_raw(json.dumps(post).encode(), key.encode())
        return key

    def restart_worker(self, kill: bool = False) -> None:
        state = self.stack.read_state()
        assert state and state.worker
        if kill:
            os.killpg(state.worker.pid, 9)
        self.stack.stop_worker()
        self.start_worker()

    def start_worker(self) -> None:
        state = self.stack.start_worker()
        assert state.worker
        wait_for_worker_log(Path(state.worker.log), pid=state.worker.pid, timeout=180)

    def document(self, key: str) -> dict[str, Any]:
        self.es.indices.refresh(index=self.settings.index_alias)
        hits = self.es.search(index=self.settings.index_alias, query={"ids": {"values": [key]}})["hits"][
            "hits"
        ]
        assert len(hits) == 1, hits
        return dict(hits[0]["_source"])


def make_post(text: str, **fields: Any) -> dict[str, Any]:
    post = {
        "id": f"t{uuid.uuid4().hex[:16]}",
        "platform": "x",
        "text": text,
        "created_at": datetime(2026, 11, 20, 8, 30, tzinfo=UTC).isoformat(),
    }
    post.update(fields)
    return post


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    run_dir = tmp_path_factory.mktemp("pantau-run")
    env = {
        "PANTAU_RUN_DIR": str(run_dir),
        "PANTAU_BATCH_TIMEOUT": "0.5",
        "PANTAU_COMMIT_INTERVAL": "1.0",
        "PANTAU_INDEX_PREFIX": "test-posts",
        "PANTAU_TOPICS_INDEX": "test-topics",
        "PANTAU_TOPICS_UPDATE_INTERVAL": "2",
    }
    saved = {k: os.environ.get(k) for k in [*env, "PANTAU_KAFKA_BOOTSTRAP", "PANTAU_ES_URL"]}
    os.environ.update(env)
    os.environ.pop("PANTAU_KAFKA_BOOTSTRAP", None)
    os.environ.pop("PANTAU_ES_URL", None)
    get_settings.cache_clear()
    settings = get_settings()
    stack = EmbeddedStack(settings)
    try:
        state = stack.start_servers()
        from rich.console import Console

        from pipeline.provision import prepare_cluster

        prepare_cluster(settings, state.endpoints, Console(quiet=True))
        handle = Pipeline(settings, stack, state.endpoints)
        handle.start_worker()
        yield handle
        handle.producer.close()
        handle.es.close()
    finally:
        stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
