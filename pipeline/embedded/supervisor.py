"""Keeps the embedded stack's worker running: restarts it with back-off when it exits, and records why.

`pantau up` starts this module detached, like the servers
(``python -m pipeline.embedded.supervisor --state S --log L -- COMMAND``); it runs COMMAND, the worker.
A worker that exits for any reason (a crash, a kill, a clean exit) is started again after a delay that
doubles from ``--backoff-first`` up to ``--backoff-max``, and drops back once a worker stayed up for
``--stable-after`` seconds. Only a SIGTERM or SIGINT to the supervisor stops the worker for good: that is how
`pantau down` stops it, supervisor first, so that no restart races the stop.

The state file (``SupervisorState``) is written by the supervisor alone; `pantau status` reads it.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from pydantic import BaseModel, Field

from pipeline.embedded.process import ServerState, previous_log, spawn_process, stop

BACKOFF_FIRST = 1.0
"""Seconds before the first restart."""
BACKOFF_MAX = 60.0
"""The longest wait between restarts of a worker that keeps dying."""
STABLE_AFTER = 300.0
"""Seconds a worker must stay up before the back-off starts again from ``BACKOFF_FIRST``: a worker that dies
on the same message every time takes up to two minutes to load its model and reach it."""
WORKER_STOP_TIMEOUT = 30.0
"""Seconds a stopped worker gets to leave its group and commit, before SIGKILL."""


class WorkerExit(BaseModel):
    """How and why the last worker ended."""

    at: datetime
    pid: int
    code: int | None = Field(None, description="exit status; None when a signal ended it")
    signal: str | None = Field(None, description="the signal that ended it, e.g. SIGKILL")
    uptime_s: float
    reason: str | None = Field(None, description="the last error line of its log, if it logged one")
    log: str = Field(description="where that worker's log is kept now")

    def describe(self) -> str:
        how = f"killed by {self.signal}" if self.signal else f"exited with status {self.code}"
        when = self.at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        last = f"last error in its log: {self.reason}" if self.reason else "no error in its log"
        return f"{how} at {when} after {self.uptime_s:.0f} s; {last}"


class SupervisorState(BaseModel):
    worker: ServerState | None = Field(None, description="the running worker; None while none runs")
    restarts: int = Field(0, description="workers started after the first one")
    last_exit: WorkerExit | None = None
    restart_at: datetime | None = Field(None, description="when the next worker starts, while backing off")
    stopped_at: datetime | None = Field(None, description="when the supervisor stopped the worker on request")


def read_state(path: Path) -> SupervisorState | None:
    try:
        return SupervisorState.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None


def write_state(path: Path, state: SupervisorState) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    os.replace(tmp, path)


_TRACEBACK = "Traceback (most recent call last)"
_LEVEL = re.compile(r"\[(ERROR|CRITICAL)\]\s*")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(: |$)")


def last_error(log: Path, max_bytes: int = 65_536, max_chars: int = 300) -> str | None:
    """The last error a worker's log reports: an ``[ERROR]``/``[CRITICAL]`` log line, an ``error:`` line
    of ours, or the exception line that ends a traceback, whichever came last."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - max_bytes))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    found: str | None = None
    in_traceback = False
    for line in text.splitlines():
        if _TRACEBACK in line:
            in_traceback = True
        elif in_traceback and _EXCEPTION_LINE.match(line):
            found, in_traceback = line.strip(), False
        elif match := _LEVEL.search(line):
            found = line[match.end() :].strip()
        elif line.startswith("error:"):
            found = line.strip()
    return found[:max_chars] if found else None


class Supervisor:
    def __init__(
        self,
        command: Sequence[str],
        state_path: Path,
        log: Path,
        backoff_first: float = BACKOFF_FIRST,
        backoff_max: float = BACKOFF_MAX,
        stable_after: float = STABLE_AFTER,
    ) -> None:
        self.command = list(command)
        self.state_path = state_path
        self.log = log
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.stopping = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _sleep(self, seconds: float) -> None:
        """Sleep, but return as soon as a stop is asked for."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        state = SupervisorState()
        delay = self.backoff_first
        while not self.stopping:
            if state.last_exit is not None:  # the log the next worker rotates away
                state.last_exit.log = str(previous_log(self.log))
            proc = spawn_process(self.command, self.log)
            began = time.monotonic()
            state.worker = ServerState.spawned(proc.pid, self.log)
            state.restart_at = None
            write_state(self.state_path, state)
            say(f"worker {proc.pid} started: {' '.join(self.command)}")
            while proc.poll() is None and not self.stopping:
                time.sleep(0.2)
            if self.stopping:
                stop(proc.pid, WORKER_STOP_TIMEOUT, state.worker.started)
                break
            uptime = time.monotonic() - began
            if uptime >= self.stable_after:
                delay = self.backoff_first
            code = proc.returncode
            state.last_exit = WorkerExit(
                at=datetime.now(UTC),
                pid=proc.pid,
                code=code if code >= 0 else None,
                signal=signal.Signals(-code).name if code < 0 else None,
                uptime_s=uptime,
                reason=last_error(self.log),
                log=str(self.log),
            )
            state.worker = None
            state.restart_at = datetime.now(UTC) + timedelta(seconds=delay)
            write_state(self.state_path, state)
            say(f"worker {proc.pid} {state.last_exit.describe()}; next start in {delay:g} s")
            self._sleep(delay)
            if self.stopping:
                break
            state.restarts += 1
            delay = min(delay * 2, self.backoff_max)
        state.worker, state.restart_at, state.stopped_at = None, None, datetime.now(UTC)
        write_state(self.state_path, state)
        say("stopped on request; worker stopped")


def say(message: str) -> None:
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    print(f"[{stamp}] {message}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.embedded.supervisor", description=__doc__)
    parser.add_argument("--state", type=Path, required=True, help="the state file to write")
    parser.add_argument("--log", type=Path, required=True, help="the worker's log")
    parser.add_argument("--backoff-first", type=float, default=BACKOFF_FIRST)
    parser.add_argument("--backoff-max", type=float, default=BACKOFF_MAX)
    parser.add_argument("--stable-after", type=float, default=STABLE_AFTER)
    parser.add_argument("command", nargs="+", help="the worker's command line (after --)")
    args = parser.parse_args(argv)
    Supervisor(
        args.command, args.state, args.log, args.backoff_first, args.backoff_max, args.stable_after
    ).run()


if __name__ == "__main__":
    main(sys.argv[1:])
