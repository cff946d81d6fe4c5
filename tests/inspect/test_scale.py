"""A 60,000-pair run opens and filters in headless Chromium within a stated time (docs/inspect.md has the
figures). The pairs are the shared UltraFeedback sample's real prompts and responses, each with its own edit."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from seapo.inspect import InspectConfig, inspect_run
from tests.inspect.conftest import open_page

PAIRS = 60_000
LOAD_LIMIT_S = 60.0
"""Opening the page, unpacking and parsing the data, and drawing the list and summary (on a shared 2-core box)."""
FILTER_LIMIT_S = 5.0
TYPES = ("correctness", "logic", "hallucination")


def synthetic_run(folder: Path, source: Path, n: int) -> dict:
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r.get("chosen")]
    folder.mkdir(parents=True)
    per_type = {t: {"planned": 0, "attempted": 0, "accepted": 0, "fallen_back": 0, "rejected": 0} for t in TYPES}
    with (folder / "pairs.jsonl").open("w", encoding="utf-8") as f:
        for i in range(n):
            r, et = rows[i % len(rows)], TYPES[i % 3]
            words = list(re.finditer(r"\w+", r["chosen"]))
            w = words[(i // len(rows)) % len(words)]
            rejected = r["chosen"][:w.start()] + f"Zorblax{i}" + r["chosen"][w.end():]
            fallback = i % 20 == 0
            per_type[et]["planned"] += 1
            per_type[et]["attempted"] += 1
            per_type[et]["fallen_back" if fallback else "accepted"] += 1
            f.write(json.dumps({
                "id": f"s{i}-{et}", "record_id": f"s{i}", "prompt": [{"role": "user", "content": r["prompt"]}],
                "chosen": {"role": "assistant", "content": r["chosen"]},
                "rejected": {"role": "assistant", "content": rejected}, "error_type": et,
                "injector": "rules" if fallback or i % 2 else "llm", "fallback": fallback,
                "difference": round(1 / max(1, len(words)), 4), "changed_tokens": 1, "attempts": 1,
                "details": {"perturbations": ["invented_name"], "edits": [{"perturbation": "invented_name",
                            "span": [w.start(), w.end()], "original": w.group(), "replacement": f"Zorblax{i}"}]},
                "judge": {"findings": {et: "present" if i % 4 else "unknown"}, "rationale": "synthetic",
                          "judge": "reference"}}) + "\n")
    summary = {"records": n, "pairs": n, "negatives": n, "rejected_items": 0, "per_type": per_type,
               "injector": "llm", "fallback": "rules", "judge": "reference", "strategy": "mixed"}
    (folder / "summary.json").write_text(json.dumps(summary))
    return summary


def measure_scale(browser, folder: Path, source: Path, n: int = PAIRS) -> tuple[dict, dict, dict]:
    """Build an n-pair run in ``folder``, write its page, open it, filter and search it: the figures
    (printed), the run's summary and what the page showed. One path for the test and the bench."""
    summary = synthetic_run(folder / "inject", source, n)
    started = time.monotonic()
    page = inspect_run(folder / "inject", InspectConfig())
    written = time.monotonic() - started
    load = open_page(browser, page, timeout=LOAD_LIMIT_S * 2)
    timings = browser.execute_script("return window.inspector.timings()")
    browser.execute_script("window.inspector.tab('items')")
    started = time.monotonic()
    shown = browser.execute_script(
        "const s = document.getElementById('f-type'); s.value = 'logic'; s.dispatchEvent(new Event('change'));"
        "return window.inspector.view().length")
    filtered = time.monotonic() - started
    started = time.monotonic()
    found = browser.execute_script(
        f"const q = document.getElementById('f-search'); q.value = 'Zorblax{n - 2}'; "
        "q.dispatchEvent(new Event('input'));"
        "return new Promise(r => setTimeout(() => r(window.inspector.view()), 250))")
    searched = time.monotonic() - started - 0.25
    browser.find_element("tag name", "body").send_keys("j")
    browser.save_screenshot(str(folder / "60k.png"))
    report = {"pairs": n, "html_mb": round(page.stat().st_size / 1e6, 1), "write_s": round(written, 1),
              "load_s": round(load, 1), "filter_s": round(filtered, 2), "search_s": round(searched, 2), **timings}
    print("inspector scale:", json.dumps(report))
    (folder / "scale.json").write_text(json.dumps(report))
    seen = {"items": browser.execute_script("return window.inspector.state.items.length"), "shown": shown,
            "found": found}
    return report, summary, seen


@pytest.mark.slow
def test_60000_pairs_open_and_filter_in_time(browser, tmp_path, shared_data):
    report, summary, seen = measure_scale(browser, tmp_path, shared_data / "source" / "ultrafeedback" /
                                          "train_1k.jsonl")
    assert seen["items"] == summary["pairs"]
    assert seen["shown"] == PAIRS // 3
    assert seen["found"] == ["s59998-logic"]  # the search within the type filter
    assert report["load_s"] < LOAD_LIMIT_S and report["filter_s"] < FILTER_LIMIT_S \
        and report["search_s"] < FILTER_LIMIT_S
