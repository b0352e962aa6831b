"""Open a brief in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) and report
what a reader's browser saw: rendered charts, console messages, network requests, the page title."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


@dataclass
class Seen:
    svg_with_shapes: int
    console: list[str]
    requests: list[str]
    title: str
    scripts: int
    text: str


def chromium() -> tuple[str, str]:
    """The browser and its driver; a missing one is a failure, never a skip (`make test` installs them)."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser and driver, (
        "Chromium is missing: apt-get install chromium chromium-driver (make test does)"
    )
    return browser, driver


def open_brief(page: Path, screenshot: Path | None = None, width: int = 412) -> Seen:
    browser, driver_path = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},900",
        "--disable-background-networking",
        "--no-first-run",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(page.resolve().as_uri())
        shapes = driver.execute_script(
            "return Array.from(document.querySelectorAll('svg'))"
            ".filter(s => s.querySelector('rect,path,circle') && s.getBoundingClientRect().width > 0).length"
        )
        if screenshot is not None:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, int(height) + 100)
            driver.save_screenshot(str(screenshot))
        console = [f"{e['level']}: {e['message']}" for e in driver.get_log("browser")]
        requests = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                url = message["params"]["request"]["url"]
                if url != page.resolve().as_uri():
                    requests.append(url)
        return Seen(
            svg_with_shapes=int(shapes),
            console=console,
            requests=requests,
            title=driver.title,
            scripts=len(driver.find_elements(By.TAG_NAME, "script")),
            text=driver.find_element(By.TAG_NAME, "body").text,
        )
    finally:
        driver.quit()
