"""X batch compliance (``pantau ingest x --compliance``): the ids of the X posts in the index go to a
compliance job, and every post X reports deleted (or whose account was deleted, suspended or made private)
is sent as a tombstone, so the pipeline removes it (X's developer terms and UU PDP 27/2022 ask for it).

``POST /2/compliance/jobs`` → ``PUT`` the ids (one per line) to its ``upload_url`` → poll
``GET /2/compliance/jobs/:id`` until ``complete`` → read its ``download_url``: one JSON object per line,
``{"id", "action": "delete", "created_at", "redacted_at", "reason"}``."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
from elasticsearch import Elasticsearch
from kafka import KafkaProducer

from pipeline.sources.connector import AccessDenied, SourceError
from pipeline.sources.sender import send_tombstones

log = logging.getLogger("pantau.ingest")

JOB_SIZE = 100_000
"""Post ids per compliance job (X's limit per upload)."""
POLL_EVERY = 10.0
JOB_TIMEOUT = 3600.0
PAGE = 5_000


def indexed_x_ids(es: Elasticsearch, index: str) -> Iterator[str]:
    """Every X post id in the index, in pages ordered by ``post_id`` (``search_after``)."""
    after: list[Any] | None = None
    while True:
        hits = es.search(
            index=index,
            query={"term": {"platform": "x"}},
            sort=[{"post_id": "asc"}],
            size=PAGE,
            source_includes=["post_id"],
            search_after=after,
        )["hits"]["hits"]
        for hit in hits:
            yield str(hit["_source"]["post_id"])
        if len(hits) < PAGE:
            return
        after = hits[-1]["sort"]


class ComplianceCheck:
    def __init__(
        self, api_base: str, token: str, stop: threading.Event, poll_every: float = POLL_EVERY
    ) -> None:
        self.base = api_base.rstrip("/")
        self.stop = stop
        self.poll_every = poll_every
        self.client = httpx.Client(
            headers={"authorization": f"Bearer {token}", "user-agent": "pantau-banten/1"}, timeout=60.0
        )

    def close(self) -> None:
        self.client.close()

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code in (401, 403):
            detail = " ".join(response.text.split())[:200]
            raise AccessDenied(
                f"x: {response.status_code} {response.reason_phrase} from {self.base}/2/compliance/jobs: "
                f"check PANTAU_X_BEARER_TOKEN and the app's access level ({detail})"
            )
        if response.status_code >= 400:
            raise SourceError(f"x: compliance job: {response.status_code}: {response.text[:200]}")
        body = response.json()
        if not isinstance(body, dict) or "data" not in body:
            raise SourceError(f"x: compliance job: unexpected answer {str(body)[:200]}")
        return dict(body["data"])

    def gone(self, ids: list[str]) -> list[dict[str, Any]]:
        """What X reports for ``ids``: one result per post to remove."""
        job = self._json(
            self.client.post(f"{self.base}/2/compliance/jobs", json={"type": "tweets", "name": "pantau"})
        )
        # upload_url and download_url are signed storage URLs: they take no bearer token
        upload = httpx.put(
            job["upload_url"],
            timeout=300.0,
            content=("\n".join(ids) + "\n").encode(),
            headers={"content-type": "text/plain"},
        )
        if upload.status_code >= 400:
            raise SourceError(f"x: compliance upload: {upload.status_code}: {upload.text[:200]}")
        deadline = time.monotonic() + JOB_TIMEOUT
        while job.get("status") not in ("complete", "failed", "expired"):
            if self.stop.wait(self.poll_every) or time.monotonic() > deadline:
                raise SourceError(f"x: compliance job {job['id']} not complete (status {job.get('status')})")
            job = self._json(self.client.get(f"{self.base}/2/compliance/jobs/{job['id']}"))
        if job["status"] != "complete":
            raise SourceError(f"x: compliance job {job['id']} {job['status']}")
        results = httpx.get(job["download_url"], timeout=300.0)
        if results.status_code >= 400:
            raise SourceError(f"x: compliance download: {results.status_code}: {results.text[:200]}")
        found = [json.loads(line) for line in results.text.splitlines() if line.strip()]
        return [r for r in found if isinstance(r, dict) and r.get("id") and r.get("action") == "delete"]

    def run(self, es: Elasticsearch, index: str, producer: KafkaProducer, topic: str) -> int:
        """One check of every indexed X post; the number of tombstones sent (after the broker's ack)."""
        sent = 0
        batch: list[str] = []
        for post_id in [*indexed_x_ids(es, index), None]:
            if post_id is not None:
                batch.append(post_id)
            if batch and (post_id is None or len(batch) >= JOB_SIZE):
                gone = self.gone(batch)
                for result in gone:
                    log.info("x: %s is gone (%s): removing it", result["id"], result.get("reason", "deleted"))
                sent += send_tombstones(producer, topic, [f"x:{result['id']}" for result in gone])
                batch = []
        return sent
