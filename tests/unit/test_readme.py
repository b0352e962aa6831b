"""The README documents every setting and every command that exists."""

from __future__ import annotations

from pathlib import Path

import typer.main

from pipeline.cli import app
from pipeline.settings import REPO_ROOT, Settings

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [
        f"PANTAU_{name.upper()}" for name in Settings.model_fields if f"PANTAU_{name.upper()}" not in README
    ]
    assert not missing


def test_every_command_is_documented() -> None:
    group = typer.main.get_group(app)
    commands = []
    for name, command in group.commands.items():
        sub = getattr(command, "commands", None)
        commands += [f"pantau {name} {child}" for child in sub] if sub else [f"pantau {name}"]
    missing = [c for c in commands if c not in README]
    assert not missing


def test_ci_runs_the_test_command_the_readme_opens_with() -> None:
    opening = "\n".join(README.splitlines()[:8])
    assert "make demo" in opening and "make test" in opening
    assert Path(REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1].strip() == "make test"
