"""lm-evaluation-harness: seapo's one scoring engine for every task it can express.

For each task, seapo hands lm-eval the selected items as an in-memory data set (lm-eval's
``custom_dataset`` hook: no Hub access, no temporary files) and task configs built from lm-eval's
own shipped YAMLs -- named in the task file's ``lmeval.tasks`` -- with their prompt templates,
answer filters and metric code. A mapping (``lmeval.mapping``, one of :data:`MAPPINGS`) turns the
loader's items into lm-eval documents and sets what the protocol fixes:

* ``truthfulqa_mc``: ``truthfulqa_mc1.yaml`` / ``truthfulqa_mc2.yaml`` as they are (MC2 is
  lm-eval's ``process_results_mc2``);
* ``mmlu``: the ``mmlu/default`` template, one lm-eval task per subject, 5-shot from its dev split;
* ``gsm8k_cot``: ``gsm8k-cot.yaml``'s filters and ``exact_match`` with the open-instruct prompt
  ("Answer the following questions." + 8 ``Question:``/``Answer:`` exemplars), stop sequences and
  length from the task file;
* ``bbh_cot``: the ``bbh/cot_fewshot`` template's answer filter and metric, with each task's
  3-shot chain-of-thought prompt as the loader gives it;
* ``minerva_math``: the ``minerva_math`` task (Minerva 4-shot prompt, lm-eval's answer
  normalization, ``exact_match`` and ``math_verify``).

HumanEval is not here: lm-eval would execute model-written code outside seapo's sandbox.

The model behind lm-eval is :class:`~seapo.evaluate.lmeval_model.SeapoLM` (seapo's prefix-cached
scorer, default) or lm-eval's own ``HFLM`` (``lm_backend="hf"``). Nothing here imports lm-eval at
module level: without it, :func:`require` says how to install it.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import importlib.util
import io
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from seapo.errors import InputError
from seapo.evaluate.loaders import GSM8K_EXEMPLARS, TaskData
from seapo.evaluate.results import prediction_record
from seapo.evaluate.tasks import MappingName, TaskSpec, UpstreamTask

INSTALL = "pip install 'seapo[eval]'"


def installed() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def version() -> str | None:
    """The installed lm-eval's version (part of every lm-eval task's cache key and metrics)."""
    if not installed():
        return None
    try:
        return importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        import lm_eval

        return str(getattr(lm_eval, "__version__", "unknown"))


def require(spec: TaskSpec) -> None:
    """Raise an :class:`InputError` saying how to install what ``spec`` needs from lm-eval."""
    if not installed():
        raise InputError(f"task '{spec.name}' is scored by lm-evaluation-harness, which is not installed: "
                         f"{INSTALL} (the README's set-up installs it)", field="tasks")
    check = _EXTRAS.get(spec.lmeval.mapping if spec.lmeval else "")
    if check is not None:
        try:
            check()
        except (ImportError, AssertionError) as exc:
            raise InputError(f"task '{spec.name}': lm-eval's answer check needs its extra dependencies: "
                             f"{INSTALL} ({exc})", field="tasks") from None


@cache
def _minerva_utils() -> Any:
    from lm_eval.tasks.minerva_math import utils

    return utils


_EXTRAS: dict[str, Callable[[], Any]] = {"minerva_math": _minerva_utils}
"""Mappings whose lm-eval code needs more than lm-eval itself (MATH: sympy, math-verify, antlr4)."""


def _shipped(relative: str) -> dict[str, Any]:
    """A fresh copy of one of lm-eval's own task YAMLs (callers modify it)."""
    return copy.deepcopy(_shipped_once(relative))


@cache
def _shipped_once(relative: str) -> dict[str, Any]:
    # Read and resolved once per process, not once per chunk of items.
    import lm_eval
    from lm_eval.tasks._yaml_loader import load_yaml

    path = Path(lm_eval.__file__).parent / "tasks" / relative
    if not path.is_file():
        raise InputError(f"lm-eval {version()} has no task file '{relative}'", path=str(path), field="lmeval.tasks")
    cfg = load_yaml(path)  # includes merged, !function resolved
    for key in ("tag", "group", "dataset_path", "dataset_name", "dataset_kwargs", "task_alias"):
        cfg.pop(key, None)
    return cfg


def task_versions(spec: TaskSpec) -> dict[str, Any]:
    """``metadata.version`` of each lm-eval task YAML ``spec`` is scored with (recorded in metrics.json)."""
    assert spec.lmeval is not None
    return {t.config: (_shipped_once(t.config).get("metadata") or {}).get("version") for t in spec.lmeval.tasks}


def _by_group(items: list[dict]) -> Iterator[tuple[str, list[dict]]]:
    """``(group, its items)`` in first-seen order: one lm-eval task per MMLU subject / BBH task."""
    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault(it["group"], []).append(it)
    yield from groups.items()


def _dataset(splits: dict[str, list[dict]]) -> Callable[..., Any]:
    def build(**_: Any) -> Any:
        from datasets import Dataset, DatasetDict

        return DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items()})

    return build


@dataclass
class LmEvalTask:
    """One lm-eval task config and the seapo items behind its documents, in document order."""

    config: dict[str, Any]
    items: list[dict]
    upstream: UpstreamTask
    """The task file's entry: which filter's answers are kept and how metrics are renamed."""

    @property
    def name(self) -> str:
        return str(self.config["task"])

    @property
    def generation(self) -> bool:
        return self.config.get("output_type") == "generate_until"


Mapping = Callable[[TaskSpec, UpstreamTask, TaskData, list[dict]], list[LmEvalTask]]
"""``(spec, lm-eval task YAML entry, data, items) -> lm-eval tasks`` for one chunk of items."""


def _generation_kwargs(spec: TaskSpec) -> dict[str, Any]:
    return {"until": list(spec.stop), "do_sample": False, "temperature": 0.0, "max_gen_toks": spec.max_new_tokens}


def _task_name(spec: TaskSpec, part: str) -> str:
    return f"seapo_{spec.name}_{part}"


def _truthfulqa(spec: TaskSpec, upstream: UpstreamTask, data: TaskData, items: list[dict]) -> list[LmEvalTask]:
    docs = [{"question": it["question"],
             "mc1_targets": {"choices": [it["best"], *it["false"]], "labels": [1] + [0] * len(it["false"])},
             "mc2_targets": {"choices": [*it["true"], *it["false"]],
                             "labels": [1] * len(it["true"]) + [0] * len(it["false"])}} for it in items]
    cfg = _shipped(upstream.config)
    cfg.update(task=_task_name(spec, Path(upstream.config).stem), custom_dataset=_dataset({"validation": docs}))
    return [LmEvalTask(cfg, items, upstream)]


def _mmlu_doc(row: dict, subject: str) -> dict:
    return {"question": row["question"], "choices": row["choices"], "answer": row["label"], "subject": subject}


def _mmlu(spec: TaskSpec, upstream: UpstreamTask, data: TaskData, items: list[dict]) -> list[LmEvalTask]:
    template = _shipped(upstream.config)
    tasks = []
    for subject, mine in _by_group(items):
        cfg = dict(template, task=_task_name(spec, subject), num_fewshot=spec.fewshot,
                   description=f"The following are multiple choice questions (with answers) about "
                               f"{subject.replace('_', ' ')}.\n\n",
                   custom_dataset=_dataset({"test": [_mmlu_doc(r, subject) for r in mine],
                                            "dev": [_mmlu_doc(r, subject) for r in data.fewshot.get(subject, [])]}))
        tasks.append(LmEvalTask(cfg, mine, upstream))
    return tasks


def _gsm8k(spec: TaskSpec, upstream: UpstreamTask, data: TaskData, items: list[dict]) -> list[LmEvalTask]:
    cfg = _shipped(upstream.config)
    cfg.update(
        task=_task_name(spec, Path(upstream.config).stem), description="Answer the following questions.\n\n",
        doc_to_text="Question: {{question}}\nAnswer:", doc_to_target="{{target}}", num_fewshot=spec.fewshot,
        fewshot_config={"sampler": "first_n", "samples": [{"question": q, "target": a} for q, a in GSM8K_EXEMPLARS]},
        generation_kwargs=_generation_kwargs(spec),
        custom_dataset=_dataset({"test": [{"question": it["question"].strip(), "target": it["target"]}
                                          for it in items]}))
    return [LmEvalTask(cfg, items, upstream)]


def _bbh(spec: TaskSpec, upstream: UpstreamTask, data: TaskData, items: list[dict]) -> list[LmEvalTask]:
    template = _shipped(upstream.config)
    tasks = []
    for task, mine in _by_group(items):
        # The task's published 3-shot prompt is lm-eval's description; the documents carry no shots.
        cfg = dict(template, task=_task_name(spec, task), description=data.fewshot[task][0]["prompt"] + "\n\n",
                   doc_to_text="Q: {{input}}\nA:", num_fewshot=0, generation_kwargs=_generation_kwargs(spec),
                   custom_dataset=_dataset({"test": [{"input": it["input"], "target": it["target"]} for it in mine]}))
        tasks.append(LmEvalTask(cfg, mine, upstream))
    return tasks


def _math(spec: TaskSpec, upstream: UpstreamTask, data: TaskData, items: list[dict]) -> list[LmEvalTask]:
    cfg = _shipped(upstream.config)
    cfg.update(task=_task_name(spec, "minerva"), num_fewshot=spec.fewshot, generation_kwargs=_generation_kwargs(spec),
               custom_dataset=_dataset({"test": [{"problem": it["problem"], "solution": it["solution"]}
                                                 for it in items]}))
    cfg.pop("training_split", None)  # few-shot examples are the fixed Minerva four
    return [LmEvalTask(cfg, items, upstream)]


MAPPINGS: dict[MappingName, Mapping] = {
    "truthfulqa_mc": _truthfulqa, "mmlu": _mmlu, "gsm8k_cot": _gsm8k, "bbh_cot": _bbh, "minerva_math": _math,
}
"""A task file's ``lmeval.mapping`` -> how its items become lm-eval tasks (a test keeps the names in step
with :data:`seapo.evaluate.tasks.MappingName`)."""


def build_tasks(spec: TaskSpec, data: TaskData, items: list[dict]) -> list[LmEvalTask]:
    """The lm-eval tasks scoring ``items`` of ``spec``: one or more per lm-eval task YAML of the task file."""
    if spec.lmeval is None:
        raise ValueError(f"task '{spec.name}' is not an lm-eval task (engine: {spec.engine})")
    mapping = MAPPINGS[spec.lmeval.mapping]
    return [task for upstream in spec.lmeval.tasks for task in mapping(spec, upstream, data, items)]


@cache
def _task_manager() -> Any:
    from lm_eval.tasks import TaskManager

    # seapo passes whole task configs: indexing lm-eval's thousands of shipped YAMLs (6 s) is not needed.
    return TaskManager(include_defaults=False)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """lm-eval's per-task tqdm bars and notices would drown seapo's own progress bars; what it
    printed is shown if the run fails.

    Its environment record is skipped too: ``simple_evaluate`` runs ``git describe`` (which prints
    ``fatal: not a git repository`` straight to the terminal outside a checkout) and torch's
    ``collect_env`` (``pip list`` and more: seconds per call) on every call, i.e. on every chunk,
    while seapo records the environment once per run (``environment.json``)."""
    import lm_eval.evaluator as evaluator

    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    captured = io.StringIO()
    skipped = {name: getattr(evaluator, name) for name in ("get_git_commit_hash", "add_env_info")
               if hasattr(evaluator, name)}
    try:
        for name in skipped:
            setattr(evaluator, name, _no_environment)
        with contextlib.redirect_stderr(captured):
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
    finally:
        logger.setLevel(level)
        for name, original in skipped.items():
            setattr(evaluator, name, original)


def _no_environment(*_: Any) -> None:
    return None


def make_model(lm: Any, backend: str, batch_size: int) -> Any:
    """The lm-eval ``LM`` scoring the tasks around a loaded :class:`~seapo.evaluate.lm.EvalLM`: seapo's
    scorer (``seapo``) or lm-eval's ``HFLM`` (``hf``)."""
    if backend == "hf":
        from lm_eval.models.huggingface import HFLM

        return HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size, device=str(lm.model.device))
    from seapo.evaluate.lmeval_model import SeapoLM

    return SeapoLM(lm)


def run_chunk(model: Any, spec: TaskSpec, data: TaskData, chunk: list[dict],
              advance: Callable[[float], None] | None = None) -> dict[str, dict[str, Any]]:
    """Score ``chunk`` with lm-eval; one prediction record per item (``error`` where generation failed).

    ``advance`` receives the fraction of the chunk finished (where the model reports it).
    """
    import lm_eval

    tasks = build_tasks(spec, data, chunk)
    reports = hasattr(model, "progress")
    if reports:
        model.progress = advance
    if hasattr(model, "errors"):
        model.errors = {}
    with _quiet():
        out = lm_eval.simple_evaluate(model=model, tasks=[t.config for t in tasks], task_manager=_task_manager(),
                                      log_samples=True, bootstrap_iters=0, verbosity="WARNING")
    if not reports and advance:
        advance(1.0)
    errors: dict[tuple[str, int], str] = getattr(model, "errors", {})
    metrics: dict[str, dict[str, float]] = {}
    details: dict[str, dict[str, Any]] = {}
    for task in tasks:
        for s in out["samples"][task.name]:
            if s["filter"] != task.upstream.filter:
                continue
            item = task.items[int(s["doc_id"])]
            for theirs, ours in task.upstream.metrics.items():
                metrics.setdefault(item["id"], {})[ours] = float(s[theirs])
            mine = details.setdefault(item["id"], {})
            if task.generation:
                mine.update(output=s["resps"][0][0], extracted=s["filtered_resps"][0])
                if (task.name, int(s["doc_id"])) in errors:
                    mine["error"] = errors[(task.name, int(s["doc_id"]))]
            else:
                logliks = {args[1].strip(): float(resp[0][0]) for args, resp in zip(s["arguments"], s["resps"],
                                                                                     strict=True)}
                mine.setdefault("logliks", {}).update(logliks)
    return {it["id"]: prediction_record(it, metrics[it["id"]], **details.get(it["id"], {})) for it in chunk}
