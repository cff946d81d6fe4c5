"""The inspector's profile, mix and comparison panels, its sorting by held-out margin, its text search and
its keyboard navigation, in headless Chromium, against the files of the session's profiled run
(tests/inspect/conftest.py) and of bare inject folders. Screenshots go to each test's tmp folder."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import seapo
from seapo.inspect import InspectConfig, inspect_run
from tests.inspect.conftest import open_page


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _text(browser, selector: str) -> str:
    return browser.find_element("css selector", selector).get_attribute("textContent")


def _shot(browser, element_id: str, path: Path) -> None:
    """A screenshot of a whole panel: the window made tall enough for it (the tabs scroll inside the
    window, so a panel below the fold would be cut), then put back."""
    size = browser.get_window_size()
    element = browser.find_element("id", element_id)
    browser.set_window_size(size["width"], max(size["height"], element.rect["height"] + 400))
    try:
        browser.execute_script("arguments[0].scrollIntoView()", element)
        element.screenshot(str(path))
    finally:
        browser.set_window_size(size["width"], size["height"])


def _interval(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _choose(browser, select_id: str, value: str) -> list[str]:
    browser.execute_script("const s = document.getElementById(arguments[0]); s.value = arguments[1];"
                           "s.dispatchEvent(new Event('change'));", select_id, value)
    return browser.execute_script("return window.inspector.view()")


def _wait_for(browser, script: str, expected, timeout: float = 5.0):
    """Poll ``script`` until it returns ``expected`` (the search waits 200 ms for the typing to stop)."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        seen = browser.execute_script(script)
        if seen == expected:
            return seen
        time.sleep(0.05)
    return seen


def _check_dots(browser, prof: dict) -> None:
    """Dots and whiskers: one dot per type and figure (share, rate), at its value on the chart's own axis
    (its grid lines at 0 and 1), its whisker from the low to the high bound."""
    grid = dict(browser.execute_script(
        "return [...document.querySelectorAll('#profile-chart line.grid')].map(l => [+l.dataset.at,"
        " +l.getAttribute('x1')])"))
    x = lambda v: grid[0] + (grid[1] - grid[0]) * v  # noqa: E731
    dots = browser.execute_script(
        "return [...document.querySelectorAll('#profile-chart circle')].map(c => ({label: c.dataset.label,"
        " value: +c.dataset.value, low: +c.dataset.low, high: +c.dataset.high, cx: +c.getAttribute('cx'),"
        " cy: +c.getAttribute('cy')}))")
    expected = {f"{et} share": (d["share"], d["low"], d["high"]) for et, d in prof["distribution"].items()}
    expected |= {f"{et} rate": (r["rate"], r["low"], r["high"]) for et, r in prof["rates"].items()}
    assert {d["label"]: (d["value"], d["low"], d["high"]) for d in dots} == expected
    whiskers = {round(y): (a, b) for a, b, y in browser.execute_script(
        "return [...document.querySelectorAll('#profile-chart line.whisker')].map(l => [+l.getAttribute('x1'),"
        " +l.getAttribute('x2'), +l.getAttribute('y1')])")}
    assert len(whiskers) == len(dots)
    for d in dots:
        assert d["cx"] == pytest.approx(x(d["value"]), abs=0.01), d
        assert whiskers[round(d["cy"])] == pytest.approx((x(d["low"]), x(d["high"])), abs=0.01), d


def _check_mix(browser, plan: dict, *, with_target: bool) -> None:
    """The mix panel's cells and bars equal summary.json's plan."""
    heads = [th.text for th in browser.find_elements("css selector", "#mix-types thead th")]
    assert ("target mix" in heads) is with_target
    for et, planned in plan["planned"].items():
        row = f'#mix-types tr[data-type="{et}"]'
        assert _text(browser, f'{row} [data-k="planned"]') == str(planned)
        assert _text(browser, f'{row} [data-k="realised"]') == f"{plan['realised'][et]:.3f}"
        if with_target:
            assert _text(browser, f'{row} [data-k="target"]') == f"{plan['target'][et]:.3f}"
    bars = browser.execute_script(
        "return [...document.querySelectorAll('#mix-chart rect')].map(r => [r.dataset.cat, +r.dataset.value,"
        " r.getBBox().height])")
    assert {cat: value for cat, value, _ in bars} == plan["planned"]
    tallest = max(bars, key=lambda b: b[1])
    for _, value, height in bars:  # drawn to scale
        assert height == pytest.approx(tallest[2] * value / tallest[1], abs=0.01)


def test_profile_panel_numbers_equal_the_profile_files(browser, profiled_run, tmp_path):
    prof = json.loads((profiled_run / "profile" / "profile.json").read_text())
    plan = json.loads((profiled_run / "inject" / "summary.json").read_text())["plan"]
    assert prof["judged_correct"] > 0 and prof["erroneous"] > 0 and prof["unknown"] > 0  # the stand-in's three
    open_page(browser, profiled_run / "report.html")
    _shot(browser, "profile", tmp_path / "profile.png")
    _shot(browser, "mix", tmp_path / "mix.png")
    for key in ("answers", "judged_correct", "erroneous", "unknown"):
        assert _text(browser, f'#profile [data-k="{key}"]') == str(prof[key]), key
    policy = prof["policy"]
    assert _text(browser, '#profile [data-k="policy"]') == f"{policy['model']} ({policy['fingerprint']})"
    assert prof["data"] in _text(browser, '#profile [data-k="data"]')
    assert _text(browser, '#profile [data-k="judge"]') == f"{prof['judge']['name']} ({prof['judge']['fingerprint']})"
    for et, d in prof["distribution"].items():
        row, rate = f'#profile-types tr[data-type="{et}"]', prof["rates"][et]
        assert _text(browser, f'{row} [data-k="count"]') == str(prof["counts"][et])
        assert _text(browser, f'{row} [data-k="share"]') == _interval(d["share"], d["low"], d["high"])
        assert _text(browser, f'{row} [data-k="rate"]') == _interval(rate["rate"], rate["low"], rate["high"])
    _check_dots(browser, prof)
    methods = _text(browser, '#profile [data-k="intervals"]')
    assert prof["intervals"]["distribution"] in methods and prof["intervals"]["rates"] in methods
    assert _text(browser, '#mix [data-k="floor"]') == f"{plan['floor']:.3f}"
    _check_mix(browser, plan, with_target=True)


def test_a_bare_inject_folder_following_a_profile_shows_it(browser, profiled_run, tmp_path):
    profile_copy = tmp_path / "elsewhere" / "profile.json"
    profile_copy.parent.mkdir()
    # Another policy's profile: the session's, with the distribution of a policy that makes all three
    # kinds of error (the reference judge of the session's profile can only find correctness errors),
    # so that the shares, their intervals and the mix they give all differ.
    prof = json.loads((profiled_run / "profile" / "profile.json").read_text())
    prof["distribution"] = {"correctness": {"share": 0.55, "low": 0.38, "high": 0.71},
                            "logic": {"share": 0.3, "low": 0.16, "high": 0.45},
                            "hallucination": {"share": 0.15, "low": 0.05, "high": 0.27}}
    profile_copy.write_text(json.dumps(prof))
    folder = tmp_path / "inject"
    seapo.inject(profiled_run / "data" / "records.jsonl", folder, seapo.InjectConfig(
        injector="rules", strategy="profile", strategy_options={"profile": str(profile_copy)}))
    plan = json.loads((folder / "summary.json").read_text())["plan"]
    open_page(browser, inspect_run(folder, InspectConfig()))
    _shot(browser, "profile", tmp_path / "profile.png")
    assert _text(browser, '#profile [data-k="file"]') == str(profile_copy)
    for key in ("answers", "judged_correct", "erroneous", "unknown"):
        assert _text(browser, f'#profile [data-k="{key}"]') == str(prof[key]), key
    for et, d in prof["distribution"].items():
        assert _text(browser, f'#profile-types tr[data-type="{et}"] [data-k="share"]') == \
            _interval(d["share"], d["low"], d["high"])
    _check_dots(browser, prof)
    _check_mix(browser, plan, with_target=True)
    # The profile the strategy followed is gone: the page says so, and the mix is still shown.
    profile_copy.unlink()
    open_page(browser, inspect_run(folder, InspectConfig()))
    assert "not there any more" in _text(browser, "#profile") and str(profile_copy) in _text(browser, "#profile")
    _check_mix(browser, plan, with_target=True)


def test_an_unprofiled_run_shows_only_the_planned_mix(browser, tmp_path, shared_data):
    records = tmp_path / "records.jsonl"
    seapo.prepare(str(shared_data / "source" / "ultrafeedback" / "train_1k.jsonl"), out=records,
                  config=seapo.PrepareConfig(limit=24))
    seapo.inject(records, tmp_path / "inject", seapo.InjectConfig(injector="rules", strategy="mixed"))
    plan = json.loads((tmp_path / "inject" / "summary.json").read_text())["plan"]
    assert "target" not in plan
    open_page(browser, inspect_run(tmp_path / "inject", InspectConfig()))
    _shot(browser, "mix", tmp_path / "mix.png")
    assert browser.find_elements("id", "profile") == []
    assert browser.find_elements("css selector", '#mix [data-k="floor"]') == []
    assert "not profiled" in _text(browser, "#mix")
    _check_mix(browser, plan, with_target=False)


def _markdown_table(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip().replace("&nbsp;", "").strip("*") for c in r.strip("|").split("|")] for r in rows]
    return [cells[0]] + cells[2:]  # without the alignment row


def test_compare_table_cells_equal_comparison_md_and_the_chart_is_drawn(browser, profiled_run, tmp_path):
    table = _markdown_table((profiled_run / "eval" / "comparison.md").read_text(encoding="utf-8"))
    assert len(table) >= 3 and any("(" in c for row in table[1:] for c in row[2:])  # deltas against base
    open_page(browser, profiled_run / "report.html")
    _shot(browser, "evaluation", tmp_path / "compare.png")
    shown = browser.execute_script(
        "const t = document.getElementById('compare'); return [[...t.querySelectorAll('thead th')].map(c => "
        "c.textContent), ...[...t.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.textContent))]")
    assert shown == table
    # The chart: one bar per row and run, each at its score; every label fully drawn, on at most two
    # lines, and no two labels overlap.
    columns = len(table[0]) - 1
    bars = browser.execute_script(
        "return [...document.querySelectorAll('#compare-chart rect')].map(r => [r.dataset.cat, r.dataset.series,"
        " +r.dataset.value])")
    assert len(bars) == (len(table) - 1) * columns
    heads = [h.replace(" (Δ vs first)", "") for h in table[0][1:]]
    for row in table[1:]:
        for k, cell in enumerate(row[1:]):
            score = float(cell.split()[0])
            value = next(v for cat, series, v in bars if series == heads[k]
                         and cat.replace(" (dimension)", "") == row[0].replace("_", " "))
            assert round(value, 1) == score
    labels = browser.execute_script(
        "return [...document.querySelectorAll('#compare-chart text.cat')].map(t => { const b = t.getBBox();"
        " return {lines: [...t.querySelectorAll('tspan')].map(s => s.textContent), x: b.x, w: b.width}; })")
    assert len(labels) == len(table) - 1
    for label, row in zip(labels, table[1:], strict=True):
        assert 1 <= len(label["lines"]) <= 2
        assert " ".join(label["lines"]).replace(" (dimension)", "") == row[0].replace("_", " ")
    for a, b in zip(labels, labels[1:], strict=False):
        assert a["x"] + a["w"] <= b["x"], (a, b)
    width = browser.execute_script("return document.getElementById('compare-chart').width.baseVal.value")
    assert labels[0]["x"] >= 0 and labels[-1]["x"] + labels[-1]["w"] <= width  # inside the chart


def _file_order(run: Path) -> list[str]:
    """The items in the page's own order: the pairs, then the rejected items."""
    return [p["id"] for p in _jsonl(run / "inject" / "pairs.jsonl")] + \
        [f"{r['record_id']}-{r['error_type']}" for r in _jsonl(run / "inject" / "rejected.jsonl")]


def test_sorting_by_heldout_margin_orders_the_list(browser, profiled_run):
    heldout = json.loads((profiled_run / "train" / "heldout.json").read_text())
    # A pair whose edit lies past the training's max_length has no divergent span, so no margin.
    before = {d["id"]: d["divergent_span_margin"] for d in heldout["before"]["details"]
              if d["divergent_span_margin"] is not None}
    after = {d["id"]: d["divergent_span_margin"] for d in heldout["after"]["details"]
             if d["divergent_span_margin"] is not None}
    change = {i: after[i] - before[i] for i in after}
    assert len(after) >= 5 and len(set(after.values())) == len(after)  # distinct: the order is decided
    assert any(abs(c) > 1e-3 for c in change.values())  # training moved them
    order = _file_order(profiled_run)
    rest = [i for i in order if i not in after]  # without a margin (not held out, or no span): last, in file order
    open_page(browser, profiled_run / "report.html")
    browser.execute_script("window.inspector.tab('items')")
    for sort, key in (("margin after ↓", lambda i: -after[i]), ("margin after ↑", lambda i: after[i]),
                      ("margin change ↓", lambda i: -change[i]), ("margin change ↑", lambda i: change[i])):
        shown = _choose(browser, "f-sort", sort)
        assert shown == sorted(after, key=key) + rest, sort
        # the list's rows show that order too
        rows = browser.execute_script("return [...document.querySelectorAll('#list .row')].map(r => r.dataset.id)")
        assert rows == shown[:len(rows)]
    assert sorted(after, key=lambda i: -after[i]) != sorted(after, key=lambda i: -change[i])  # two different keys


def _searchable(run: Path) -> dict[str, str]:
    """Every item's searchable text, from the run's files: id, prompt, positive, negative, the judge's
    rationale and a rejected item's reason (its positive from records.jsonl, its negative the last attempt)."""
    texts = {}
    for p in _jsonl(run / "inject" / "pairs.jsonl"):
        texts[p["id"]] = "\n".join([p["id"], *(m["content"] for m in p["prompt"]), p["chosen"]["content"],
                                    p["rejected"]["content"], (p.get("judge") or {}).get("rationale") or ""])
    records = {r["id"]: r for r in _jsonl(run / "data" / "records.jsonl")}
    for r in _jsonl(run / "inject" / "rejected.jsonl"):
        last, record = r["attempts"][-1], records[r["record_id"]]
        texts[f"{r['record_id']}-{r['error_type']}"] = "\n".join([
            f"{r['record_id']}-{r['error_type']}", *(m["content"] for m in record["prompt"]), record["response"],
            last.get("text") or "", r["reason"], (last.get("judge") or {}).get("rationale") or ""])
    return texts


def test_text_search_narrows_to_the_right_ids(browser, profiled_run):
    from selenium.webdriver.common.keys import Keys

    texts = _searchable(profiled_run)
    words: dict[str, int] = {}
    for text in texts.values():
        for w in set(re.findall(r"[a-z]{6,}", text.lower())):
            words[w] = words.get(w, 0) + 1
    common = next(w for w, n in sorted(words.items()) if 3 <= n <= len(texts) // 3)
    # A rules edit's replacement found in one negative and in no other text of any item (a number's
    # replacement is often in the judge's rationale too): only a search of the negatives finds it.
    pairs = _jsonl(profiled_run / "inject" / "pairs.jsonl")
    negatives = {p["id"]: p["rejected"]["content"].lower() for p in pairs}
    others = "\n".join(t.lower().replace(negatives.get(i, "\0"), "") for i, t in texts.items())
    # One line and short: it is typed into the search box (where Enter would leave the box).
    pair = next(p for p in pairs if p["details"].get("edits")
                and 3 <= len(p["details"]["edits"][0]["replacement"].strip()) <= 40
                and "\n" not in p["details"]["edits"][0]["replacement"]
                and (rep := p["details"]["edits"][0]["replacement"].strip().lower()) not in others
                and sum(rep in n for n in negatives.values()) == 1)
    only_in_negative = pair["details"]["edits"][0]["replacement"].strip()
    queries = [common.upper(), only_in_negative, pair["id"], "no such text anywhere 42", "?"]
    open_page(browser, profiled_run / "report.html")
    browser.find_element("tag name", "body").send_keys("/")  # the search key
    box = browser.switch_to.active_element
    assert box.get_attribute("id") == "f-search"
    for query in queries:
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.BACKSPACE)
        box.send_keys(query)  # typed, as a person would
        expected = [i for i in _file_order(profiled_run) if query.lower() in texts[i].lower()]
        shown = _wait_for(browser, "return window.inspector.view()", expected)
        assert shown == expected, query
        assert _text(browser, "#count") == f"{len(expected)} of {len(texts)}"
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    assert len(_wait_for(browser, "return window.inspector.view()", _file_order(profiled_run))) == len(texts)


def test_page_keys_and_tab_order(browser, profiled_run, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_page(browser, profiled_run / "report.html")
    browser.find_element("tag name", "body").send_keys("2")  # the pairs tab; the list has the focus
    n = len(browser.execute_script("return window.inspector.view()"))
    assert n > 25
    selected = lambda: browser.execute_script("return window.inspector.state.sel")  # noqa: E731
    press = lambda key: ActionChains(browser).send_keys(key).perform()  # noqa: E731
    for key, expected in ((Keys.PAGE_DOWN, 10), (Keys.PAGE_DOWN, 20), (Keys.PAGE_UP, 10), (Keys.END, n - 1),
                          (Keys.PAGE_DOWN, n - 1), (Keys.PAGE_UP, n - 11), (Keys.HOME, 0), (Keys.PAGE_UP, 0)):
        press(key)
        assert selected() == expected, key
    press(Keys.PAGE_DOWN)
    press(Keys.PAGE_DOWN)
    visible = browser.execute_script(  # the selected row is drawn and scrolled into the list's view
        "const l = document.getElementById('list').getBoundingClientRect(), r = document.querySelector("
        "'.row[aria-selected=\"true\"]').getBoundingClientRect(); return r.top >= l.top && r.bottom <= l.bottom")
    assert visible
    assert _text(browser, '#detail [data-k="id"]') == browser.execute_script("return window.inspector.view()")[20]
    browser.save_screenshot(str(tmp_path / "page-down.png"))
    # Tab walks the tabs, every filter, the search and the list, in that order; Shift+Tab walks back.
    browser.execute_script("document.querySelector('nav button').focus()")
    walked = []
    for _ in range(11):
        active = browser.switch_to.active_element
        walked.append(active.get_attribute("id") or active.text)
        press(Keys.TAB)
    assert walked == ["Summary", "Pairs & rejected items", "Input rejects", "f-type", "f-injector",
                      "f-perturbation", "f-status", "f-judge", "f-heldout", "f-sort", "f-search"]
    assert browser.switch_to.active_element.get_attribute("id") == "list"
    press("j")  # the list has the focus: j moves the selection
    assert selected() == 21
    back = lambda: ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()  # noqa: E731
    back()
    assert browser.switch_to.active_element.get_attribute("id") == "f-search"
    back()
    assert browser.switch_to.active_element.get_attribute("id") == "f-sort"
    press("j")  # a key for the focused control (no sort starts with j), not a move in the list
    assert selected() == 21 and browser.find_element("id", "f-sort").get_attribute("value") == "file order"
    press(Keys.TAB)
    press(Keys.ESCAPE)  # leaves the search for the list
    assert browser.switch_to.active_element.get_attribute("id") == "list"
    browser.execute_script("document.querySelector('nav button').focus()")
    press(Keys.ENTER)  # a focused tab button opens its tab
    assert browser.find_element("id", "tab-items").get_attribute("hidden") is not None
    assert browser.find_element("id", "tab-summary").get_attribute("hidden") is None


def test_heldout_table_cells_equal_report_md(browser, profiled_run):
    """One formatter for the held-out figures: the page's table is report.md's, cell for cell."""
    report = (profiled_run / "report.md").read_text(encoding="utf-8")
    section = report.split("## Held-out preference accuracy", 1)[1].split("\n## ", 1)[0]
    table = _markdown_table(section)
    assert len(table) >= 2
    open_page(browser, profiled_run / "report.html")
    shown = browser.execute_script(
        "const t = document.getElementById('heldout-table'); return [[...t.querySelectorAll('thead th')].map(c => "
        "c.textContent), ...[...t.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.textContent))]")
    assert shown == table
    assert all(re.fullmatch(r"[+-]?\d\.\d{3} \[-?\d\.\d{2}, -?\d\.\d{2}\]", c) for row in shown[1:] for c in row[2:7]
               if c != "-"), shown
