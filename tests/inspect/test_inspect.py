"""`seapo inspect` in a real headless Chromium: a real run (a profile, rules injection on the shared
UltraFeedback sample following it, a short training with the tiny model, a small evaluation: the session's
run of tests/inspect/conftest.py), a bare inject folder, escaping, keyboard navigation and a narrow
window. Screenshots go to each test's tmp folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seapo.inspect import InspectConfig, inspect_run
from seapo.inspect.data import apply_edits, word_edits
from tests.inspect.conftest import open_page


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def real_run(profiled_run) -> Path:
    """The session's profiled run (tests/inspect/conftest.py)."""
    return profiled_run


def _set_filter(driver, name: str, value: str) -> list[str]:
    driver.execute_script("const s = document.getElementById('f-' + arguments[0]); s.value = arguments[1];"
                          "s.dispatchEvent(new Event('change'));", name, value)
    return driver.execute_script("return window.inspector.view()")


def test_run_writes_report_html_whose_counts_equal_summary(browser, real_run, tmp_path):
    page = real_run / "report.html"
    assert page.is_file() and (real_run / "report.md").is_file()
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text  # offline
    summary = json.loads((real_run / "inject" / "summary.json").read_text())
    open_page(browser, page)
    browser.save_screenshot(str(tmp_path / "summary.png"))
    find = browser.find_element
    assert find("id", "n-pairs").text == str(summary["pairs"])
    assert find("id", "n-records").text == str(summary["records"])
    assert find("id", "n-rejected").text == str(summary["rejected_items"])
    for et, counts in summary["per_type"].items():
        for key in ("planned", "attempted", "accepted", "fallen_back", "rejected"):
            cell = find("css selector", f'#per-type tr[data-type="{et}"] [data-k="{key}"]')
            assert cell.text == str(counts[key]), (et, key)
    assert browser.execute_script("return window.inspector.state.items.length") == \
        summary["pairs"] + summary["rejected_items"]
    body = find("tag name", "body").text
    for heading in ("Training", "Held-out preference accuracy", "Evaluation (seapo compare", "Edit size"):
        assert heading in body
    assert find("css selector", '#compare').text.count("truthfulqa_mc") >= 1
    heldout = json.loads((real_run / "train" / "heldout.json").read_text())
    assert heldout["before"]["details"]  # held-out pairs carry their margins into the page
    marked = browser.execute_script("return window.inspector.state.items.filter(i => i.heldout).map(i => i.id)")
    assert sorted(marked) == sorted(d["id"] for d in heldout["before"]["details"])


def test_diff_of_a_rules_pair_highlights_exactly_its_edit(browser, real_run, tmp_path):
    pairs = _jsonl(real_run / "inject" / "pairs.jsonl")
    for p in pairs:  # the diff reconstructs every negative exactly
        assert apply_edits(p["chosen"]["content"], word_edits(p["chosen"]["content"], p["rejected"]["content"])) \
            == p["rejected"]["content"]
    known = next(p for p in pairs if p["injector"] == "rules" and len(p["details"]["edits"]) == 1
                 and p["details"]["perturbation"] == "number")
    edit = known["details"]["edits"][0]
    start, end = edit["span"]
    assert known["chosen"]["content"][start:end] == edit["original"]
    open_page(browser, real_run / "report.html")
    browser.execute_script("window.inspector.tab('items')")
    browser.find_element("id", "f-search").send_keys(known["id"])
    browser.execute_script("document.getElementById('f-search').dispatchEvent(new Event('input'))")
    browser.implicitly_wait(0)
    import time

    for _ in range(50):
        if browser.execute_script("return window.inspector.view()") == [known["id"]]:
            break
        time.sleep(0.1)
    assert browser.execute_script("return window.inspector.view()") == [known["id"]]
    positive = browser.find_element("css selector", '#detail [data-side="positive"]')
    negative = browser.find_element("css selector", '#detail [data-side="negative"]')
    assert [e.text for e in positive.find_elements("css selector", "del.d")] == [edit["original"]]
    assert [e.text for e in negative.find_elements("css selector", "ins.i")] == [edit["replacement"]]
    # Where: the highlighted text starts exactly at the record's span.
    offset = browser.execute_script(
        "const box = arguments[0], d = box.querySelector('del.d'); const r = document.createRange();"
        "r.setStart(box, 0); r.setEndBefore(d); return r.toString().length;", positive)
    assert offset == start
    assert positive.get_attribute("textContent") == known["chosen"]["content"]
    assert negative.get_attribute("textContent") == known["rejected"]["content"]
    # Not colour alone: struck through and underlined.
    styles = browser.execute_script("return [getComputedStyle(arguments[0].querySelector('del.d')).textDecorationLine,"
                                    "getComputedStyle(arguments[1].querySelector('ins.i')).textDecorationLine]",
                                    positive, negative)
    assert styles == ["line-through", "underline"]
    browser.save_screenshot(str(tmp_path / "pair.png"))


def test_each_filter_narrows_the_list_to_exactly_its_items(browser, real_run):
    pairs = _jsonl(real_run / "inject" / "pairs.jsonl")
    rejected = _jsonl(real_run / "inject" / "rejected.jsonl")
    held = {d["id"] for d in json.loads((real_run / "train" / "heldout.json").read_text())["before"]["details"]}
    rows = [{"id": p["id"], "type": p["error_type"], "injector": p["injector"],
             "perturbation": p["details"].get("perturbations", []),
             "status": "fallen_back" if p["fallback"] else "accepted",
             "judge": p["judge"]["findings"][p["error_type"]] if p["judge"] else "none",
             "heldout": "held out" if p["id"] in held else "not held out"} for p in pairs]
    for r in rejected:
        last = r["attempts"][-1]
        rows.append({"id": f"{r['record_id']}-{r['error_type']}", "type": r["error_type"], "injector": last["injector"],
                     "perturbation": [], "status": "rejected",
                     "judge": last["judge"]["findings"][r["error_type"]] if last["judge"] else "none",
                     "heldout": "not held out"})
    open_page(browser, real_run / "report.html")
    assert len(browser.execute_script("return window.inspector.view()")) == len(rows)
    checked = 0
    for name in ("type", "injector", "perturbation", "status", "judge", "heldout"):
        values = {v for r in rows for v in ([r[name]] if isinstance(r[name], str) else r[name])}
        for value in sorted(values):
            shown = _set_filter(browser, name, value)
            expected = [r["id"] for r in rows if value in ([r[name]] if isinstance(r[name], str) else r[name])]
            assert sorted(shown) == sorted(expected), (name, value)
            assert browser.find_element("id", "count").get_attribute("textContent") == f"{len(expected)} of {len(rows)}"
            checked += 1
        _set_filter(browser, name, "")
    assert checked >= 8
    # Filters combine; sorting by difference orders the list.
    both = _set_filter(browser, "status", "rejected")
    assert set(both) == {r["id"] for r in rows if r["status"] == "rejected"}
    _set_filter(browser, "status", "")
    browser.execute_script("const s = document.getElementById('f-sort'); s.value = 'difference ↓';"
                           "s.dispatchEvent(new Event('change'))")
    diffs = browser.execute_script("return window.inspector.state.view.map(i => i.difference)")
    assert diffs == sorted(diffs, reverse=True)


def test_keyboard_navigation(browser, real_run, tmp_path):
    from selenium.webdriver.common.keys import Keys

    open_page(browser, real_run / "report.html")
    body = browser.find_element("tag name", "body")
    body.send_keys("2")  # the pairs tab
    assert not browser.find_element("id", "tab-items").get_attribute("hidden")
    view = browser.execute_script("return window.inspector.view()")
    selected = lambda: browser.execute_script("return window.inspector.state.sel")  # noqa: E731
    active = browser.switch_to.active_element
    active.send_keys("j")
    active.send_keys("j")
    active.send_keys(Keys.ARROW_DOWN)
    active.send_keys("k")
    assert selected() == 2
    assert browser.find_element("css selector", '.row[aria-selected="true"]').get_attribute("data-id") == view[2]
    assert browser.find_element("css selector", '#detail [data-k="id"]').text == view[2]
    active.send_keys(Keys.END)
    assert selected() == len(view) - 1
    active.send_keys(Keys.HOME)
    assert selected() == 0
    active.send_keys("/")
    assert browser.switch_to.active_element.get_attribute("id") == "f-search"
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert browser.switch_to.active_element.get_attribute("id") == "list"
    browser.save_screenshot(str(tmp_path / "keyboard.png"))


def test_narrow_window_stacks_the_columns(browser, real_run, tmp_path):
    open_page(browser, real_run / "report.html")
    try:
        browser.set_window_size(560, 900)
        browser.execute_script("window.inspector.tab('items')")
        columns = browser.execute_script(
            "return getComputedStyle(document.querySelector('#detail .sides')).gridTemplateColumns.split(' ').length")
        assert columns == 1
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 580  # nothing wider than the window
        browser.save_screenshot(str(tmp_path / "narrow.png"))
    finally:
        browser.set_window_size(1400, 1000)


HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>bold?</b> </script>'


@pytest.mark.parametrize("compress", [True, False])
def test_html_in_the_data_shows_as_text_and_runs_nothing(browser, tmp_path, compress):
    folder = tmp_path / "inject"
    folder.mkdir()
    pair = {"id": "r1-logic", "record_id": "r1", "prompt": [{"role": "user", "content": "Q " + HOSTILE}],
            "chosen": {"role": "assistant", "content": "Answer: 4. " + HOSTILE},
            "rejected": {"role": "assistant", "content": "Answer: 5. " + HOSTILE + " <script>alert(1)</script>"},
            "error_type": "logic", "injector": "rules", "fallback": False, "difference": 0.1, "changed_tokens": 3,
            "attempts": 1, "details": {"perturbations": [HOSTILE]},
            "judge": {"findings": {"logic": "present"}, "rationale": HOSTILE, "judge": "reference"}}
    (folder / "pairs.jsonl").write_text(json.dumps(pair) + "\n")
    (folder / "summary.json").write_text(json.dumps({"records": 1, "pairs": 1, "rejected_items": 0,
                                                     "injector": HOSTILE, "per_type": {}}))
    page = inspect_run(folder, InspectConfig(compress=compress, title=HOSTILE))
    open_page(browser, page)
    assert browser.execute_script("return window.pwned") is None
    assert browser.execute_script("return document.querySelectorAll('#detail script, #detail img, #detail b, "
                                  "#tab-summary img').length") == 0
    assert browser.title == HOSTILE
    detail = browser.find_element("id", "detail").get_attribute("textContent")
    assert detail.count(HOSTILE) >= 3  # rationale, perturbation, prompt (positive/negative split by the diff)
    assert browser.find_element("css selector", '[data-side="negative"]').get_attribute("textContent") \
        == pair["rejected"]["content"]


def test_a_bare_inject_folder_and_the_cli(browser, tmp_path, shared_data):
    import seapo

    source = tmp_path / "source.jsonl"
    rows = (shared_data / "source" / "ultrafeedback" / "train_1k.jsonl").read_text(encoding="utf-8").splitlines()[:30]
    bad = ['{"prompt": "broken', json.dumps({"prompt": "Why?", "chosen": "", "rejected": "No."})]
    source.write_text("\n".join(rows[:10] + bad + rows[10:]) + "\n", encoding="utf-8")
    records = tmp_path / "records.jsonl"
    seapo.prepare(str(source), out=records)
    seapo.inject(records, tmp_path / "inject", seapo.InjectConfig(injector="rules", strategy="all"))
    out = tmp_path / "view.html"
    subprocess.run([sys.executable, "-m", "seapo.cli", "inspect", str(tmp_path / "inject"), "--out", str(out)],
                   check=True, capture_output=True)
    open_page(browser, out)
    summary = json.loads((tmp_path / "inject" / "summary.json").read_text())
    assert browser.execute_script("return window.inspector.view().length") == \
        summary["pairs"] + summary["rejected_items"]
    # rejected items are joined with records.jsonl beside the folder: their positive shows, with the reasons
    browser.execute_script("window.inspector.tab('items')")
    rejected = _set_filter(browser, "status", "rejected")
    assert len(rejected) == summary["rejected_items"] > 0
    reason = browser.find_element("css selector", '#detail [data-k="outcome"]').text
    assert reason.startswith("rejected (")
    assert browser.find_element("css selector", '#detail [data-side="positive"]').text.strip()
    assert browser.find_elements("css selector", "#detail .attempt")
    # the input rows prepare rejected, with their reasons
    input_rejects = _jsonl(tmp_path / "records.rejects.jsonl")
    assert len(input_rejects) >= 2
    browser.execute_script("window.inspector.tab('inputs')")
    table = browser.find_element("id", "input-rejects")
    shown = table.find_elements("css selector", "tbody tr")
    assert len(shown) == len(input_rejects)
    assert [r.find_elements("tag name", "td")[4].text for r in shown] == [r["reason"] for r in input_rejects]
    browser.save_screenshot(str(tmp_path / "input-rejects.png"))
    (tmp_path / "empty").mkdir()
    bad_run = subprocess.run([sys.executable, "-m", "seapo.cli", "inspect", str(tmp_path / "empty")],
                             capture_output=True, text=True)
    said = " ".join((bad_run.stdout + bad_run.stderr).split())  # the console wraps long lines
    assert bad_run.returncode == 2 and "no injection outputs" in said
