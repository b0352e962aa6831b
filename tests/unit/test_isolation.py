"""The root conftest keeps the shell's settings out of the tests (run this file with PANTAU_* set, or a .env
file in the directory pytest starts from, to see it matter)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.settings import get_settings


def test_no_setting_of_the_shell_or_a_dotenv_file_reaches_a_test() -> None:
    assert [name for name in os.environ if name.startswith("PANTAU_")] == ["PANTAU_RUN_DIR"]
    assert not Path(".env").exists()
    settings = get_settings()
    assert settings.kafka_bootstrap is None and settings.es_url is None


def test_the_run_directory_is_a_temporary_one(tmp_path_factory: pytest.TempPathFactory) -> None:
    run_dir = get_settings().run_dir
    assert run_dir == Path(os.environ["PANTAU_RUN_DIR"])
    assert run_dir.is_relative_to(tmp_path_factory.getbasetemp())
