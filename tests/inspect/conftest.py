"""A headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, started by the tests, and
the one real run the browser tests share: profiled, injected, trained and evaluated (built once per session)."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seapo.backends import BackendConfig, Completion, Generation, GenerationBackend, GenerationRequest, register_backend

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


class GSM8KStandInConfig(BackendConfig):
    name: str = "gsm8k-stand-in"
    data: str = ""
    """The GSM8K JSONL the profile asks from: where the stand-in looks its answers up."""


@register_backend("gsm8k-stand-in")
class GSM8KStandIn(GenerationBackend):
    """A policy for the profile stage, in place of a model: the embedded model's own GSM8K answers are
    mostly cut off at the token limit ("unknown" to the reference judge), so its profile would show
    next to nothing. This one answers by the problem's place in the file, in fives: the first with the
    worked reference solution (judged correct), the next three with that solution's final number off by
    one (a correctness error), the last without a number ("unknown"), so the profile has all three
    counts, and different ones (of 24: 5 correct, 15 erroneous, 4 unknown)."""

    config_class = GSM8KStandInConfig

    def _load(self) -> None:
        rows = [json.loads(line) for line in Path(self.config.data).read_text(encoding="utf-8").splitlines()]
        self.solutions = {r["question"].strip(): (i, r["answer"]) for i, r in enumerate(rows)}

    def _answer(self, request: GenerationRequest) -> str:
        asked = (request.messages or [{}])[-1].get("content", "")
        question = asked.split("\nSolve it step by step")[0].strip()
        index, solution = self.solutions[question]
        if index % 5 == 0:
            return solution
        if index % 5 != 4:
            worked, final = solution.rsplit("####", 1)
            return f"{worked}#### {int(final.strip().replace(',', '')) + 1}"
        return "I would need to think about this problem for longer."

    def _generate(self, requests, progress):
        return [Generation([Completion(self._answer(r), "stop", 12)]) for r in requests]


PROFILED_RUN_SETTINGS = {
    "prepare.limit": 40, "inject.injector": "rules", "train.max_steps": 2, "train.batch_size": 2,
    "train.max_length": 192, "train.precompute_ref_log_probs": False, "train.learning_rate": 0.02,
    "train.heldout_fraction": 0.3, "eval.tasks": ["truthfulqa_mc"], "eval.limit": 3,
}
"""Cheap on purpose (two optimizer steps of two pairs, short sequences, the reference's log-probs on the
fly): the run exists to be looked at, and the large learning rate makes the held-out margins move."""


@pytest.fixture(scope="session")
def profiled_run(tmp_path_factory, tiny_model, shared_data) -> Path:
    """One `seapo run` for the whole session: 40 UltraFeedback records, a profile of the stand-in policy
    on 24 GSM8K problems, rules injection following it (strategy profile), a short training with the
    tiny model and a small evaluation (TruthfulQA MC, 3 items, base and trained)."""
    from seapo.pipeline.config import load_run_config
    from seapo.pipeline.run import run

    out = tmp_path_factory.mktemp("inspect") / "run"
    gsm8k = str(shared_data / "source" / "gsm8k" / "train.jsonl")
    config = load_run_config(None, {
        **PROFILED_RUN_SETTINGS, "out": str(out),
        "prepare.source": str(shared_data / "source" / "ultrafeedback" / "train_1k.jsonl"),
        "profile": {"data": gsm8k, "limit": 24, "policy": {"name": "gsm8k-stand-in", "data": gsm8k}},
        "train.model": str(tiny_model), "eval.data_dir": str(shared_data / "eval")})
    run(config)
    return out
