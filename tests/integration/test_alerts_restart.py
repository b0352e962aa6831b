"""`pantau down` then `pantau up` on the embedded stack (the broker comes back empty): detection resumes
from its copy in Elasticsearch and nobody is paged again, even when the same posts are sent again.

Starts its own stack in a private run directory: the test is about stopping and starting one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.alert_receivers import SECRET, Receivers


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    server = Receivers().start()
    yield server
    server.stop()


def test_down_and_up_neither_forgets_nor_repages(tmp_path: Path, receivers: Receivers) -> None:
    alerts_file = tmp_path / "alerts.yaml"
    alerts_file.write_text(
        f"subscribers:\n  - name: ops\n    webhook: {{url: '{receivers.url}/hook/ops', secret: {SECRET}}}\n"
    )
    env = {
        **os.environ,
        "PANTAU_RUN_DIR": str(tmp_path / "run"),
        "PANTAU_ALERTS_FILE": str(alerts_file),
        "PANTAU_ALERTS_GROUP_WAIT": "1",
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

    now = datetime.now(UTC).replace(microsecond=0)
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"r{uuid.uuid4().hex[:10]}",
                    "platform": "x",
                    "text": f"tolong banjir besar di pandeglang, warga terjebak #{i}",
                    "created_at": now.isoformat(),
                }
            )
            + "\n"
            for i in range(4)
        )
    )

    def wait_for(count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(receivers.of("webhook", "ops")) < count and time.monotonic() < deadline:
            time.sleep(0.5)

    try:
        pantau("up")
        pantau("produce", str(posts))
        wait_for(1, 180)
        (paged,) = receivers.of("webhook", "ops")
        assert paged.verified and paged.json()["key"] == "emergency:region=3601"
        time.sleep(5)  # the detector's state is copied to Elasticsearch every 2 s
        pantau("down")
        pantau("up")
        pantau("produce", str(posts))  # the same posts again, into a broker that lost every topic
        wait_for(2, 30)
        assert len(receivers.of("webhook", "ops")) == 1, [r.body[:200] for r in receivers.of("webhook")]
        log = (tmp_path / "run" / "logs" / "worker.log").read_text()
        assert "alert state restored from Elasticsearch" in log
    finally:
        subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "down"], env=env, capture_output=True, timeout=120
        )
