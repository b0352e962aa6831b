"""Fixtures shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model.tiny import tiny_smsa


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """16 train and 8 valid SmSA rows, all three labels present (``tests.model.tiny.tiny_smsa``)."""
    return tiny_smsa(tmp_path_factory.mktemp("data"))
