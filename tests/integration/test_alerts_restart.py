"""`pantau down` then `pantau up` on the embedded stack (the broker comes back empty): detection resumes
from its copy in Elasticsearch and nobody is paged again, even when the same posts are sent again; a
notification still waiting its ``group_wait`` at `pantau down` is sent after `pantau up`, once, and so is
an alert detected but lost with the topic before delivery took it; the reminders of an alert still firing
go on, numbered on from the last one sent.

Starts its own stack in a private run directory: the test is about stopping and starting one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.settings import Settings
from pipeline.sinks.elasticsearch import sync_client
from schemas.alerts import Alert, AlertKind, Severity, alert_id
from schemas.vocab import Region
from tests.alert_receivers import SECRET, Receivers


def _posts(path: Path, text: str, at: datetime) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"r{uuid.uuid4().hex[:10]}",
                    "platform": "x",
                    "text": f"{text} #{i}",
                    "created_at": at.isoformat(),
                }
            )
            + "\n"
            for i in range(4)
        )
    )
    return path


def test_down_and_up_neither_forgets_nor_repages(tmp_path: Path, receivers: Receivers) -> None:
    alerts_file = tmp_path / "alerts.yaml"
    alerts_file.write_text(
        f"subscribers:\n  - name: ops\n    webhook: {{url: '{receivers.url}/hook/ops', secret: {SECRET}}}\n"
        "    repeat_interval: 60\n"
    )
    # a stack of its own: none of the session worker's settings (its index names, its digest timer)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PANTAU_")},
        "PANTAU_RUN_DIR": str(tmp_path / "run"),
        "PANTAU_ALERTS_FILE": str(alerts_file),
        "PANTAU_ALERTS_GROUP_WAIT": "20",  # long enough for `pantau down` to find a notification waiting
        "COLUMNS": "200",
    }

    def pantau(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def of_key(key: str) -> list[Any]:
        return [
            r
            for r in receivers.of("webhook", "ops")
            if key in {a["key"] for a in r.json().get("alerts", [r.json()])}
        ]

    def wait_for(what: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not what() and time.monotonic() < deadline:
            time.sleep(0.5)

    now = datetime.now(UTC).replace(microsecond=0)
    pandeglang = _posts(tmp_path / "a.jsonl", "tolong banjir besar di pandeglang, warga terjebak", now)
    lebak = _posts(tmp_path / "b.jsonl", "tolong banjir besar di rangkasbitung lebak, warga terjebak", now)
    first, second = "emergency:region=3601", "emergency:region=3602"
    try:
        pantau("up")
        es = sync_client(Settings(), json.loads(pantau("status", "--json").stdout)["elasticsearch"])
        pantau("produce", str(pandeglang))
        wait_for(lambda: of_key(first), 180)
        (paged,) = of_key(first)
        assert paged.verified and paged.json()["status"] == "firing"
        original_id = paged.headers["webhook-id"]

        def waiting() -> bool:
            if not es.indices.exists(index="pantau-deliveries"):
                return False
            es.indices.refresh(index="pantau-deliveries")
            query = {"bool": {"filter": [{"term": {"alert_key": second}}, {"term": {"status": "pending"}}]}}
            return bool(es.search(index="pantau-deliveries", query=query)["hits"]["hits"])

        pantau("produce", str(lebak))
        wait_for(waiting, 120)
        assert waiting(), "the Lebak emergency never waited in its group"
        assert of_key(second) == []
        # an alert the detector indexed whose pantau.alerts message delivery never read (lost at down)
        lost = Alert(
            id=alert_id("emergency:region=3604", now),
            key="emergency:region=3604",
            kind=AlertKind.EMERGENCY,
            severity=Severity.CRITICAL,
            region=Region.KAB_SERANG,
            window_start=now,
            window_end=now,
            count=3,
            expected=0,
            summary="Laporan darurat bencana di Kab. Serang: 3 unggahan.",
            raised_at=datetime.now(UTC),
        )
        es.index(index="pantau-alerts", id=lost.id, document=lost.model_dump(mode="json"), refresh=True)
        time.sleep(3)  # the detector's state is copied to Elasticsearch every 2 s
        pantau("down")
        es.close()
        reminded_before = [r.headers["webhook-id"] for r in of_key(first)[1:]]
        assert of_key(second) == [], "sent before `pantau down`: the test did not stop a pending one"
        up_at = time.time()
        pantau("up")
        pantau("produce", str(pandeglang))  # the same posts again, into a broker that lost every topic
        pantau("produce", str(lebak))
        wait_for(
            lambda: of_key(second) and of_key(lost.key) and [r for r in of_key(first) if r.at > up_at], 180
        )
        time.sleep(5)
        (pending,) = of_key(second)  # the notification waiting at `pantau down`: sent, once
        assert pending.verified  # alone, or grouped with the alert below (same group_wait)
        (taken,) = of_key(lost.key)  # detected before `pantau down`, never taken: sent after up, once
        assert taken.verified
        ids = [r.headers["webhook-id"] for r in receivers.of("webhook", "ops")]
        assert len(ids) == len(set(ids)), ids  # nothing sent twice
        after = [r.headers["webhook-id"] for r in of_key(first) if r.at > up_at]
        assert original_id not in after
        # the reminders go on from the last one sent before the restart (none sent: _r1)
        assert after[0] == f"{original_id}_r{len(reminded_before) + 1}", (reminded_before, after)
        log = (tmp_path / "run" / "logs" / "worker.log").read_text()
        assert "alert state restored from Elasticsearch" in log
        restored = re.findall(
            r"delivery state restored from Elasticsearch: (\d+) keys in cooldown, "
            r"(\d+) reminders, (\d+) pending",
            log,
        )
        assert restored and restored[-1] == ("1", "1", "1"), restored
        assert "1 alerts detected but never taken before the restart" in log
    finally:
        subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "down"], env=env, capture_output=True, timeout=120
        )
