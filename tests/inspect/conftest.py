"""A headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, started by the tests."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage")


def _find(*names: str) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (a fresh profile folder each time)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    chromium = _find("chromium", "chromium-browser", "google-chrome")
    driver_path = _find("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("chromium / chromedriver not found (Debian: apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

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
