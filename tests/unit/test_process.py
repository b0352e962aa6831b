"""Processes named in a state file: a PID that now belongs to another process is never signalled."""

from __future__ import annotations

import subprocess
import time

from pipeline.embedded.process import is_alive, start_time, stop
from pipeline.embedded.stack import ServerState


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
