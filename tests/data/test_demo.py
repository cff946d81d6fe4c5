"""The packaged demo data set: loads offline, enough rows, every kind of content, checkable answers."""

from __future__ import annotations

import json
import re

from seapo.data import demo_path
from seapo.data.prepare import prepare
from tests.data.helpers import read_jsonl

KINDS = ("fact", "arithmetic", "reasoning", "code")


def demo_rows():
    return [json.loads(line) for line in demo_path().read_text(encoding="utf-8").split("\n") if line.strip()]


def test_demo_prepares_by_name(tmp_path):
    result = prepare("demo", out=tmp_path / "demo.jsonl")
    assert result.kept >= 48 and result.rejected == result.filtered == result.duplicates == 0
    assert (result.dataset, result.format, result.duplicate_prompts) == ("seapo-demo", "alpaca", 0)
    records = read_jsonl(result.out)
    rows = demo_rows()
    assert [r["prompt"][-1]["content"] for r in records] == [row["instruction"] for row in rows]
    assert [r["response"] for r in records] == [row["output"] for row in rows]


def test_demo_covers_all_kinds_with_sized_responses():
    rows = demo_rows()
    counts = {kind: sum(row["category"] == kind for row in rows) for kind in KINDS}
    assert set(row["category"] for row in rows) == set(KINDS)
    assert all(n >= 10 for n in counts.values()), counts
    assert len({row["instruction"] for row in rows}) == len(rows) >= 48
    for row in rows:
        words = len(row["output"].split())
        assert 40 <= words <= 150, (words, row["instruction"])
    # the first rows already mix every kind, so a --limit slice of the demo is still varied
    assert {row["category"] for row in rows[:8]} == set(KINDS)


def test_demo_arithmetic_answers_are_the_final_number():
    for row in (r for r in demo_rows() if r["category"] == "arithmetic"):
        numbers = re.findall(r"\d+(?:\.\d+)?", row["output"])
        assert numbers[-1] == row["answer"], row["instruction"]
        assert row["output"].rstrip().endswith(f"The answer is {row['answer']}.")


def test_demo_code_runs_and_passes_its_checks():
    """Each code answer defines a working function: run it against the row's own asserts."""
    code_rows = [r for r in demo_rows() if r["category"] == "code"]
    for row in code_rows:
        blocks = re.findall(r"```python\n(.*?)```", row["output"], re.S)
        assert len(blocks) == 1, row["instruction"]
        namespace: dict = {}
        exec(compile(blocks[0], "<demo>", "exec"), namespace)  # our own packaged code, not model output
        exec(compile(row["check"], "<demo-check>", "exec"), namespace)
        name = re.search(r"def (\w+)\(", blocks[0]).group(1)
        assert name in row["instruction"]
