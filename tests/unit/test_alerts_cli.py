"""`pantau subscribers` and `pantau alerts` without servers: a malformed file is one clear line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _pantau(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


def test_a_malformed_alerts_file_is_one_clear_error_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("subscribers:\n  - name: ops\n    webhook: {url: 'https://x/h', secret: nope}\n")
    result = _pantau("subscribers", "list", env={"PANTAU_ALERTS_FILE": str(path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}:3: subscribers[0].webhook.secret: must start with whsec_ (Standard Webhooks secret)"
    ]
    path.write_text("subscribers: [\n")
    result = _pantau("subscribers", "test", "ops", env={"PANTAU_ALERTS_FILE": str(path)})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "not valid YAML" in result.stderr


def test_a_stray_byte_in_the_alerts_file_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    """Not a traceback: a Latin-1 byte, a NUL, an integer Python will not read, a From with a line break."""
    path = tmp_path / "alerts.yaml"
    good = b"subscribers:\n  - name: ops\n    slack: {url: 'https://h/x'}\n"
    for content, line in [
        (good.replace(b"ops", b"ops  # caf\xe9"), 2),
        (good + b"\x00", 4),
        (good + b"    repeat_interval: " + b"9" * 5000 + b"\n", 4),
        (good.replace(b"slack: {url: 'https://h/x'}", b'email: {to: a@b.co, from: "x@y\\nBcc: z@q"}'), 3),
    ]:
        path.write_bytes(content)
        result = _pantau("subscribers", "list", env={"PANTAU_ALERTS_FILE": str(path)})
        assert result.returncode == 2, result.stderr
        (error,) = result.stderr.strip().splitlines()
        assert error.startswith(f"error: {path}:{line}: "), error


def test_a_silence_needs_a_matcher() -> None:
    result = _pantau("alerts", "silence", "--for", "1h", env={})
    assert result.returncode == 2 and "--agency, --region, --kind" in result.stdout


def test_the_alerts_table_shows_windows_in_utc() -> None:
    """An alert keeps its posts' offset (+07:00); the table's column says UTC, so it converts."""
    from datetime import datetime, timedelta, timezone

    from rich.console import Console

    from pipeline.alerts.report import render_alerts
    from schemas.alerts import Alert, AlertKind, Severity

    wib = timezone(timedelta(hours=7))
    start = datetime(2026, 11, 22, 4, 55, tzinfo=wib)
    alert = Alert(
        id="al_1",
        key="emergency:region=3602",
        kind=AlertKind.EMERGENCY,
        severity=Severity.CRITICAL,
        window_start=start,
        window_end=start + timedelta(minutes=10),
        count=3,
        expected=0,
        summary="x",
        raised_at=start,
    )
    console = Console(record=True, width=200)
    render_alerts(console, [alert])
    text = console.export_text()
    assert "window (UTC)" in text and "2026-11-21 21:55" in text and "04:55" not in text
