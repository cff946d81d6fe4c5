"""A headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, started by the tests."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage")


def _find(*names: str) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


@contextlib.contextmanager
def headless_chromium() -> Iterator[Any]:
    """A headless Chromium driven by Selenium, with a fresh profile folder; raises LookupError naming
    what is missing (selenium, chromium or chromedriver). Used by the tests and bench/bench_inspect.py."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise LookupError("selenium is not installed (pip install selenium)") from None
    chromium = _find("chromium", "chromium-browser", "google-chrome")
    driver_path = _find("chromedriver")
    if chromium is None or driver_path is None:
        raise LookupError("chromium / chromedriver not found (Debian: apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="seapo-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(300)
    driver.set_script_timeout(300)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (a fresh profile folder each time)."""
    try:
        with headless_chromium() as driver:
            yield driver
    except LookupError as missing:
        pytest.skip(str(missing))


def open_page(driver, path: Path, timeout: float = 120.0) -> float:
    """Open an inspector file and wait until its data is rendered; returns the seconds it took."""
    started = time.monotonic()
    driver.get(path.resolve().as_uri())
    while time.monotonic() - started < timeout:
        state = driver.execute_script("return document.body && document.body.dataset.ready")
        if state == "1":
            return time.monotonic() - started
        if state == "error":
            raise AssertionError(driver.find_element("id", "status").text)
        time.sleep(0.05)
    raise AssertionError(f"the page did not load within {timeout} s")
