"""What every test runs in, apart from the shell that started pytest.

- No ``PANTAU_*`` variable of that shell reaches a test or a process a test starts.
- The working directory is an empty temporary one: settings read ``.env`` from the working directory,
  so a developer's ``.env`` would otherwise leak into the tests and the servers and workers they start.
  Tests name files by absolute paths (``REPO_ROOT``, ``tmp_path``).
- ``PANTAU_RUN_DIR`` is a temporary directory: no test touches ``~/.local/state/pantau``.
- Each test starts with a fresh settings cache.
- Tests under ``tests/integration`` are marked ``integration`` (``-m "not integration"`` leaves them out).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alert_receivers import Receivers, SmtpServer

INTEGRATION = Path(__file__).resolve().parent / "integration"
_shell_settings: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    for name in [name for name in os.environ if name.startswith("PANTAU_")]:
        _shell_settings[name] = os.environ.pop(name)


def pytest_unconfigure(config: pytest.Config) -> None:
    os.environ.update(_shell_settings)


RUN_FIRST = (
    "test_topics.py",
    "test_scale_out.py",
    "test_a_stopped_worker_stays_stopped_and_status_and_produce_say_so",
)
"""Integration tests that need what other tests change on the shared stack, run first in this order:
- the topics and scale-out tests date their posts in late November 2026 and need them inside the topics
  window: discovery's clock only moves forward, to the newest post seen, and other tests send posts dated
  today;
- the stopped-worker test needs a group past its first generation: the embedded broker numbers that one
  0, aiokafka sends LeaveGroup only from generation 1, and a member that did not leave stays listed (the
  scale-out test's joins and leaves move the group on)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)
    rank = {name: i for i, name in enumerate(RUN_FIRST)}

    def order(item: pytest.Item) -> int:
        return rank.get(getattr(item, "originalname", item.name), rank.get(item.path.name, len(rank)))

    # stable: unit tests first (the integration fixture's settings stay set from its start to the session's
    # end), then the ordered integration tests, then the rest in their order
    items.sort(key=lambda item: (INTEGRATION in item.path.resolve().parents, order(item)))


@pytest.fixture(scope="session", autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    cwd = os.getcwd()
    os.environ["PANTAU_RUN_DIR"] = str(tmp_path_factory.mktemp("run"))
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(cwd)
        os.environ.pop("PANTAU_RUN_DIR", None)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    from pipeline.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def receivers() -> Iterator[Receivers]:
    """Webhook, Telegram, WhatsApp and Slack stand-ins on loopback, one server per test module."""
    server = Receivers().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """An SMTP server on loopback that requires STARTTLS and a login."""
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()
