"""The worker's supervisor, run as `pantau up` runs it, over small stand-in commands instead of a worker."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.embedded.process import ServerState, is_alive, spawn
from pipeline.embedded.supervisor import SupervisorState, last_error, read_state

CRASH = (
    "import sys\n"
    "print('[2026-11-20 08:30:00,000] [1] [INFO] [^Worker]: Ready', flush=True)\n"
    "print('Traceback (most recent call last):')\n"
    "print('  File \"app.py\", line 1, in <module>')\n"
    "print('faust.exceptions.ConsistencyError: persisted offset is higher than highwater')\n"
    "sys.exit(3)\n"
)


class Supervised:
    def __init__(self, tmp_path: Path) -> None:
        self.state_path = tmp_path / "supervisor.json"
        self.worker_log = tmp_path / "logs" / "worker.log"
        self.log = tmp_path / "logs" / "supervisor.log"
        self.process: ServerState | None = None

    def start(self, command: list[str], *options: str) -> None:
        argv = [sys.executable, "-m", "pipeline.embedded.supervisor", "--state", str(self.state_path)]
        argv += ["--log", str(self.worker_log), *options, "--", *command]
        self.process = ServerState.spawned(spawn(argv, self.log), self.log)

    def wait(self, until: Callable[[SupervisorState], bool], timeout: float = 30.0) -> SupervisorState:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = read_state(self.state_path)
            if state is not None and until(state):
                return state
            time.sleep(0.05)
        raise AssertionError(f"timed out; state {read_state(self.state_path)}, log:\n{self.log.read_text()}")


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    handle = Supervised(tmp_path)
    yield handle
    if handle.process:
        handle.process.stop(timeout=10)
    state = read_state(handle.state_path)
    if state and state.worker:
        state.worker.stop(timeout=5)


def test_a_worker_that_keeps_crashing_is_restarted_with_growing_back_off_and_its_error_kept(
    supervised: Supervised,
) -> None:
    supervised.start([sys.executable, "-c", CRASH], "--backoff-first", "0.1", "--backoff-max", "0.4")
    state = supervised.wait(lambda s: s.restarts >= 4)
    assert state.last_exit is not None
    assert (state.last_exit.code, state.last_exit.signal) == (3, None)
    assert state.last_exit.reason == (
        "faust.exceptions.ConsistencyError: persisted offset is higher than highwater"
    )
    assert state.last_exit.log in (str(supervised.worker_log), f"{supervised.worker_log}.1")
    delays = re.findall(r"next start in ([\d.]+) s", supervised.log.read_text())
    assert delays[:4] == ["0.1", "0.2", "0.4", "0.4"]
    assert "exited with status 3" in supervised.log.read_text()
    assert "; last error in its log: faust.exceptions.ConsistencyError" in state.last_exit.describe()


def test_a_worker_up_long_enough_is_restarted_after_the_first_delay_again(supervised: Supervised) -> None:
    command = ["sh", "-c", "sleep 0.5; exit 1"]
    supervised.start(command, "--backoff-first", "0.1", "--stable-after", "0.3")
    supervised.wait(lambda s: s.restarts >= 3)
    delays = re.findall(r"next start in ([\d.]+) s", supervised.log.read_text())
    assert delays[:3] == ["0.1", "0.1", "0.1"]


def test_a_killed_worker_comes_back_and_stopping_the_supervisor_stops_it_for_good(
    supervised: Supervised,
) -> None:
    supervised.start(["sleep", "300"], "--backoff-first", "0.2")
    first = supervised.wait(lambda s: s.worker is not None).worker
    assert first is not None
    os.killpg(first.pid, signal.SIGKILL)
    state = supervised.wait(lambda s: s.worker is not None and s.worker.pid != first.pid)
    assert state.restarts == 1
    assert state.last_exit is not None and state.last_exit.pid == first.pid
    assert state.last_exit.signal == "SIGKILL" and state.last_exit.code is None
    assert "killed by SIGKILL" in state.last_exit.describe()
    second = state.worker
    assert second is not None and second.alive()

    assert supervised.process is not None
    supervised.process.stop(timeout=10)  # as `pantau down` does: SIGTERM to the supervisor
    assert not supervised.process.alive()
    assert not is_alive(second.pid, second.started)
    stopped = read_state(supervised.state_path)
    assert stopped is not None and stopped.worker is None and stopped.stopped_at is not None
    assert stopped.restarts == 1
    time.sleep(0.5)  # longer than the back-off: a restart racing the stop would have happened by now
    assert read_state(supervised.state_path) == stopped


def test_last_error_is_the_last_error_line_or_exception_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    assert last_error(log) is None  # no log at all
    log.write_text("[2026-11-20 08:30:00,000] [7] [INFO] [^Worker]: Ready\n")
    assert last_error(log) is None
    log.write_text(
        "[2026-11-20 08:30:00,000] [7] [ERROR] [^---Agent*: pipeline.app.index]: "
        "Crashed reason=KeyError('x')\n"
        "[2026-11-20 08:30:00,001] [7] [INFO] [^Worker]: Stopping...\n"
    )
    assert last_error(log) == "[^---Agent*: pipeline.app.index]: Crashed reason=KeyError('x')"
    log.write_text("model loaded\nerror: cannot load the model from /nowhere: no config.json\n")
    assert last_error(log) == "error: cannot load the model from /nowhere: no config.json"
    log.write_text(
        "╭──── Traceback (most recent call last) ────╮\n"
        "│ /app.py:1 in <module>                     │\n"
        "╰───────────────────────────────────────────╯\n"
        "MessageSizeTooLargeError: [Error 10] MessageSizeTooLargeError\n"
    )
    assert last_error(log) == "MessageSizeTooLargeError: [Error 10] MessageSizeTooLargeError"
