"""The brief as PDF, printed by headless Chromium (Debian's ``chromium`` package) from the HTML file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def print_pdf(html_file: Path, pdf_file: Path, timeout: float = 120.0) -> None:
    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chromium found (apt-get install chromium); the HTML brief was written")
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf_file.resolve()}",
        html_file.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not pdf_file.is_file():
        raise RuntimeError(f"chromium could not print the PDF: {done.stderr.strip()[-300:]}")
