"""Processes named in a state file: a PID that now belongs to another process is never signalled."""

from __future__ import annotations

import subprocess
import threading
import time

from pipeline.embedded.process import is_alive, spawn, start_time, stop
from pipeline.embedded.stack import EmbeddedStack, ServerState
from pipeline.settings import Settings


def test_a_reused_pid_is_not_ours_and_is_left_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        ours = ServerState.spawned(proc.pid, tmp_path / "log")
        assert ours.started == start_time(proc.pid) and ours.started is not None
        assert ours.alive()
        # the same PID recorded by a process that started at another time (a state file from before a reboot)
        stale = ours.model_copy(update={"started": ours.started - 1})
        assert not stale.alive()
        stale.stop(timeout=0.5)
        time.sleep(0.2)
        assert proc.poll() is None, "a process that is not ours was signalled"
        ours.stop(timeout=5)
        assert proc.wait(timeout=5) is not None and not is_alive(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stop_of_a_process_gone_is_quiet() -> None:
    proc = subprocess.Popen(["true"], start_new_session=True)
    proc.wait()
    stop(proc.pid, timeout=0.5)
    assert not is_alive(proc.pid)


def test_each_start_gets_a_fresh_log_and_keeps_the_previous_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "logs" / "server.log"
    for word in ("first", "second"):
        pid = spawn(["echo", word], log)
        # the Popen object is dropped inside spawn, and its finaliser may already have reaped the child
        deadline = time.monotonic() + 10
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not is_alive(pid)
    assert log.read_text() == "second\n"
    assert (tmp_path / "logs" / "server.log.1").read_text() == "first\n"


def test_one_start_or_stop_at_a_time_per_run_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = EmbeddedStack(Settings(), run_dir=tmp_path)
    order: list[str] = []

    def second() -> None:
        with stack.locked():
            order.append("second")

    with stack.locked():
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first done")
    thread.join(timeout=5)
    assert order == ["first done", "second"]
