"""The wheel works on its own: built from the sources, installed without dependencies into a fresh venv that
reuses the ones already installed (no torch download), and run from a directory outside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pipeline", "schemas", "pyproject.toml", "README.md", "LICENSE", "NOTICE")
"""What the build reads; copied so that the build leaves nothing (build/, egg-info) in the checkout."""


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_wheel_runs_the_pipeline_from_another_directory(tmp_path: Path) -> None:
    # Nothing of the checkout may leak in: no PYTHONPATH, no PANTAU_* from the caller, cwd outside it.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env = {k: v for k, v in env.items() if not k.startswith("PANTAU_")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    src = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, src], elsewhere, env)
    (wheel,) = dist.glob("pantau_banten-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], elsewhere, env)
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    _run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", "--no-compile", "-q", wheel],
        elsewhere,
        env,
    )
    # The dependencies: this interpreter's site-packages as a plain path (its .pth files, the editable
    # install of the checkout among them, are not run), after the venv's own, so the wheel comes first.
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], elsewhere, env)
    reused = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(purelib.strip()) / "reuse-installed.pth").write_text("\n".join(sorted(reused)) + "\n")
    # noida-db is found next to the interpreter, where installing the [embedded] extra puts it
    (bin_dir / "noida-db").symlink_to(Path(sys.executable).with_name("noida-db"))

    where = _run([python, "-c", "import pipeline; print(pipeline.__file__)"], elsewhere, env).strip()
    assert Path(where).is_relative_to(venv), where

    env |= {"PANTAU_RUN_DIR": str(tmp_path / "run"), "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    try:
        _run([bin_dir / "pantau", "up"], elsewhere, env, timeout=420)
        status = json.loads(_run([bin_dir / "pantau", "status", "--json"], elsewhere, env))
        assert status["worker"] == "running", status
        assert status["documents"] == 0, status
        worker = json.loads((tmp_path / "run" / "supervisor.json").read_text())["worker"]["pid"]
        argv = Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")
        assert argv[0].decode() == str(python), argv  # the worker runs the venv's interpreter, so the wheel
    finally:
        _run([bin_dir / "pantau", "down"], elsewhere, env)
