"""`pantau up` supervises its worker: a dead worker comes back, and `pantau status` says what happened."""

from __future__ import annotations

import json
import os
import signal

from pipeline.tracking import wait_processed
from tests.integration.conftest import Pipeline, make_post, pantau


def test_a_killed_worker_is_restarted_and_status_says_why(pipeline: Pipeline) -> None:
    before = pipeline.stack.read_supervision()
    assert before is not None and before.worker is not None
    killed = before.worker
    os.killpg(killed.pid, signal.SIGKILL)
    worker = pipeline.wait_for_restart(killed)

    after = pipeline.stack.read_supervision()
    assert after is not None and after.restarts == before.restarts + 1
    last = after.last_exit
    assert last is not None and last.pid == killed.pid
    assert (last.signal, last.code) == ("SIGKILL", None)
    assert last.log == f"{pipeline.stack.worker_log}.1"  # the killed worker's log, kept beside the new one

    result = pantau("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert (status["worker"], status["worker_pid"]) == ("running", worker.pid)
    assert status["worker_restarts"] == after.restarts
    assert status["worker_last_exit"]["signal"] == "SIGKILL"
    assert status["worker_log"] == str(pipeline.stack.worker_log)
    text = pantau("status").stdout
    assert f"worker_restarts  {after.restarts}" in text
    assert "killed by SIGKILL" in text and last.log in text

    post = make_post("lampu PJU di Jalan Raya Cilegon mati semua, gelap gulita")
    key = pipeline.send_post(post)
    tally = wait_processed(pipeline.settings, pipeline.endpoints.kafka, pipeline.es, [key], timeout=180)
    assert tally.indexed == 1, tally


def test_up_on_a_running_stack_says_what_it_found_and_restarts_nothing(pipeline: Pipeline) -> None:
    state = pipeline.stack.read_state()
    worker = pipeline.stack.worker()
    assert state is not None and state.supervisor is not None and worker is not None
    result = pantau("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Kafka and Elasticsearch already running" in result.stdout
    assert f"worker already running (pid {worker.pid}, supervised" in result.stdout
    assert "starting" not in result.stdout
    again = pipeline.stack.read_state()
    assert again is not None and again.model_dump() == state.model_dump()  # the same processes
    assert pipeline.stack.worker() == worker
