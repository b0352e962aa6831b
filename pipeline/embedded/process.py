"""Start, probe and stop a server process by PID, with its log in the run directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, Field


class ServerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def spawn(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` detached (see ``spawn_process``) and forget it: its PID is all a state file keeps."""
    return spawn_process(argv, log_path, env).pid


def spawn_process(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session so that stopping it also stops anything it forks. Its log starts
    empty; the previous run's is kept as ``<log>.1`` (appending forever grew without bound, and readiness
    checks read the whole file). The caller that keeps the ``Popen`` gets the exit status."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists() and log_path.stat().st_size:
        os.replace(log_path, previous_log(log_path))
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )


def previous_log(log_path: Path) -> Path:
    """Where ``spawn`` keeps the log of the run before."""
    return log_path.with_name(log_path.name + ".1")


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot, /proc/PID/stat field 22), or None where /proc
    cannot tell: with the PID it names one process, even after the PID is reused."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def is_alive(pid: int | None, started: int | None = None) -> bool:
    """Whether ``pid`` runs and, with ``started`` (from ``start_time``), is still the process that was
    started then: after a crash or a reboot a state file's PID may belong to somebody else's process."""
    if not pid:
        return False
    if started is not None and start_time(pid) not in (started, None):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child still answers kill(0): reap it
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def stop(pid: int | None, timeout: float = 15.0, started: int | None = None) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout``; a PID that is no longer
    the process started at ``started`` is left alone."""
    if not pid or not is_alive(pid, started):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):  # gone, or not ours to signal
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not is_alive(pid, started):
                return
            time.sleep(0.1)


class ServerState(BaseModel):
    """A process named in a state file: its PID, when it started (so a reused PID is never taken for it),
    its port if it serves one, and its log."""

    pid: int
    started: int | None = Field(None, description="the process's start time (see start_time)")
    port: int | None = None
    log: str

    @classmethod
    def spawned(cls, pid: int, log: Path, port: int | None = None) -> ServerState:
        return cls(pid=pid, started=start_time(pid), port=port, log=str(log))

    def alive(self) -> bool:
        return is_alive(self.pid, self.started)

    def stop(self, timeout: float = 15.0) -> None:
        stop(self.pid, timeout, self.started)


def wait_until(ready: Callable[[], bool], pid: int, what: str, log_path: Path, timeout: float = 60.0) -> None:
    """Poll ``ready`` until it answers True; fail early, with the log's tail, if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            raise ServerError(f"{what} exited during start-up; log {log_path}:\n{tail(log_path)}")
        try:
            if ready():
                return
        except Exception:
            pass
        time.sleep(0.2)
    stop(pid)
    raise ServerError(f"{what} not ready after {timeout:.0f}s; log {log_path}:\n{tail(log_path)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
