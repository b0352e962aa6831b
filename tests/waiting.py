"""Waiting on a real server in tests: poll until something turns up, or fail saying what was seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(what: Callable[[], T], timeout: float, message: str | Callable[[], str]) -> T:
    """``what()``'s first truthy value within ``timeout`` seconds; else an AssertionError with ``message``
    (called then, if callable, so it can show the state at the deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(message() if callable(message) else message)
