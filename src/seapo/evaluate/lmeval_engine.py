"""lm-evaluation-harness as seapo's scoring engine (the default wherever lm-eval can express a task).

For each task, seapo hands lm-eval the selected items as an in-memory data set (lm-eval's
``custom_dataset`` hook: no Hub access, no temporary files) and a task config built from
lm-eval's own shipped YAML -- its prompt templates, answer filters and metric code:

* TruthfulQA MC1/MC2: ``truthfulqa_mc1.yaml`` / ``truthfulqa_mc2.yaml`` (MC2 is lm-eval's
  ``process_results_mc2``);
* MMLU: the ``mmlu/default`` template, 5-shot from the dev split, one lm-eval task per subject;
* GSM8K: ``gsm8k-cot.yaml``'s filters and ``exact_match`` with the open-instruct prompt
  ("Answer the following questions." + 8 ``Question:``/``Answer:`` exemplars); the headline is
  its ``flexible-extract`` filter (the last number, as open-instruct scores it);
* BBH: the ``bbh/cot_fewshot`` template's answer filter and metric, with each task's 3-shot
  chain-of-thought prompt as the loader gives it (the published files under ``--data-dir``,
  else rendered from lm-eval's own YAMLs);
* MATH: the ``minerva_math`` task (Minerva 4-shot prompt, lm-eval's answer normalization,
  ``exact_match`` and ``math_verify``).

HumanEval stays native: lm-eval would execute model-written code outside seapo's sandbox.

The model behind lm-eval is :class:`~seapo.evaluate.lmeval_model.SeapoLM` (seapo's
prefix-cached scorer, default) or lm-eval's own ``HFLM`` (``lm_backend="hf"``).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from seapo.evaluate import builders

#: Task loaders (``TaskSpec.loader``) whose protocol lm-eval expresses.
SUPPORTED_LOADERS = ("truthfulqa_csv", "mmlu_csv", "gsm8k_jsonl", "bbh", "math")


def installed() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def unsupported_reason(spec) -> str | None:
    """None when lm-eval can run ``spec``; otherwise why it cannot (the task then runs natively)."""
    if not installed():
        return "lm-eval is not installed (pip install 'seapo[eval]')"
    if spec.loader not in SUPPORTED_LOADERS:
        if spec.kind == "code":
            return "model-written code runs only in seapo's sandbox"
        return f"no lm-eval mapping for loader '{spec.loader}'"
    if spec.loader == "math":
        try:
            _minerva_utils()
        except (ImportError, AssertionError) as exc:
            return f"lm-eval's MATH scoring needs its extra: pip install 'lm-eval[math]' ({exc})"
    return None


@cache
def _minerva_utils():
    from lm_eval.tasks.minerva_math import utils

    return utils


def _shipped(relative: str) -> dict[str, Any]:
    """A fresh copy of one of lm-eval's own task YAMLs (callers modify it)."""
    return copy.deepcopy(_shipped_once(relative))


@cache
def _shipped_once(relative: str) -> dict[str, Any]:
    # Read and resolved once per process, not once per chunk of items.
    import lm_eval
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(Path(lm_eval.__file__).parent / "tasks" / relative)  # includes merged, !function resolved
    for key in ("tag", "group", "dataset_path", "dataset_name", "dataset_kwargs", "task_alias"):
        cfg.pop(key, None)
    return cfg


def _by_group(items: list[dict]) -> Iterator[tuple[str, list[dict]]]:
    """``(group, its items)`` in first-seen order: one lm-eval task per MMLU subject / BBH task."""
    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault(it["group"], []).append(it)
    yield from groups.items()


def _dataset(splits: dict[str, list[dict]]) -> Callable[..., Any]:
    def build(**_: Any):
        from datasets import Dataset, DatasetDict

        return DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items()})

    return build


@dataclass
class LmEvalTask:
    """One lm-eval task config and the seapo items behind its documents, in document order."""

    config: dict[str, Any]
    items: list[dict]
    metric_names: dict[str, str]
    """lm-eval metric -> seapo metric (e.g. TruthfulQA's ``acc`` -> ``mc2``)."""
    filter: str = "none"
    """The lm-eval filter whose samples are kept (GSM8K: ``flexible-extract``)."""
    generation: bool = False


def _generation_kwargs(spec) -> dict[str, Any]:
    return {"until": list(spec.stop), "do_sample": False, "temperature": 0.0, "max_gen_toks": spec.max_new_tokens}


def _truthfulqa(spec, data, items: list[dict]) -> list[LmEvalTask]:
    docs = [{"question": it["question"],
             "mc1_targets": {"choices": [it["best"], *it["false"]], "labels": [1] + [0] * len(it["false"])},
             "mc2_targets": {"choices": [*it["true"], *it["false"]],
                             "labels": [1] * len(it["true"]) + [0] * len(it["false"])}} for it in items]
    tasks = []
    for which in ("mc1", "mc2"):
        cfg = _shipped(f"truthfulqa/truthfulqa_{which}.yaml")
        cfg.update(task=f"seapo_truthfulqa_{which}", custom_dataset=_dataset({"validation": docs}))
        tasks.append(LmEvalTask(cfg, items, {"acc": which}))
    return tasks


def _mmlu_doc(row: dict, subject: str) -> dict:
    return {"question": row["question"], "choices": row["choices"], "answer": row["label"], "subject": subject}


def _mmlu(spec, data, items: list[dict]) -> list[LmEvalTask]:
    template = _shipped("mmlu/default/_default_template_yaml")
    tasks = []
    for subject, mine in _by_group(items):
        cfg = dict(template, task=f"seapo_mmlu_{subject}", num_fewshot=spec.fewshot,
                   description=f"The following are multiple choice questions (with answers) about "
                               f"{subject.replace('_', ' ')}.\n\n",
                   custom_dataset=_dataset({"test": [_mmlu_doc(r, subject) for r in mine],
                                            "dev": [_mmlu_doc(r, subject) for r in data.fewshot.get(subject, [])]}))
        tasks.append(LmEvalTask(cfg, mine, {"acc": "acc"}))
    return tasks


def _gsm8k(spec, data, items: list[dict]) -> list[LmEvalTask]:
    cfg = _shipped("gsm8k/gsm8k-cot.yaml")
    cfg.update(
        task="seapo_gsm8k", description="Answer the following questions.\n\n",
        doc_to_text="Question: {{question}}\nAnswer:", doc_to_target="{{target}}", num_fewshot=spec.fewshot,
        fewshot_config={"sampler": "first_n", "samples": [{"question": q, "target": a}
                                                          for q, a in builders.GSM8K_EXEMPLARS]},
        generation_kwargs=_generation_kwargs(spec),
        custom_dataset=_dataset({"test": [{"question": it["question"].strip(), "target": it["target"]}
                                          for it in items]}))
    return [LmEvalTask(cfg, items, {"exact_match": "exact_match"}, filter="flexible-extract", generation=True)]


def _bbh(spec, data, items: list[dict]) -> list[LmEvalTask]:
    template = _shipped("bbh/cot_fewshot/_cot_fewshot_template_yaml")
    tasks = []
    for task, mine in _by_group(items):
        cfg = dict(template, task=f"seapo_bbh_{task}", description=data.fewshot[task][0]["prompt"] + "\n\n",
                   doc_to_text="Q: {{input}}\nA:", num_fewshot=0, generation_kwargs=_generation_kwargs(spec),
                   custom_dataset=_dataset({"test": [{"input": it["input"], "target": it["target"]} for it in mine]}))
        tasks.append(LmEvalTask(cfg, mine, {"exact_match": "exact_match"}, filter="get-answer", generation=True))
    return tasks


def _math(spec, data, items: list[dict]) -> list[LmEvalTask]:
    cfg = _shipped("minerva_math/minerva_math_algebra.yaml")
    cfg.update(task="seapo_math", num_fewshot=spec.fewshot, generation_kwargs=_generation_kwargs(spec),
               custom_dataset=_dataset({"test": [{"problem": it["problem"], "solution": it["solution"]}
                                                 for it in items]}))
    cfg.pop("training_split", None)  # few-shot examples are the fixed Minerva four
    return [LmEvalTask(cfg, items, {"exact_match": "exact_match", "math_verify": "math_verify"}, generation=True)]


BUILDERS: dict[str, Callable[[Any, builders.TaskData, list[dict]], list[LmEvalTask]]] = {
    "truthfulqa_csv": _truthfulqa, "mmlu_csv": _mmlu, "gsm8k_jsonl": _gsm8k, "bbh": _bbh, "math": _math,
}


@cache
def _task_manager():
    from lm_eval.tasks import TaskManager

    # seapo passes whole task configs: indexing lm-eval's thousands of shipped YAMLs (6 s) is not needed.
    return TaskManager(include_defaults=False)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """lm-eval's per-task tqdm bars and notices would drown seapo's own progress bars; what it
    printed is shown if the run fails."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
    finally:
        logger.setLevel(level)


def make_model(lm, backend: str, batch_size: int):
    """The lm-eval ``LM`` scoring the tasks: seapo's scorer (``seapo``) or lm-eval's ``HFLM`` (``hf``)."""
    if backend == "hf":
        from lm_eval.models.huggingface import HFLM

        return HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size,
                    device=str(lm.model.device))
    from seapo.evaluate.lmeval_model import SeapoLM

    return SeapoLM(lm)


def run_chunk(model, spec, data: builders.TaskData, chunk: list[dict],
              advance: Callable[[float], None] | None = None) -> dict[str, dict[str, Any]]:
    """Score ``chunk`` with lm-eval; per-item records in the native engine's layout.

    ``advance`` receives the fraction of the chunk finished (where the model reports it).
    """
    import lm_eval

    from seapo.evaluate.runner import prediction_record

    tasks = BUILDERS[spec.loader](spec, data, chunk)
    if hasattr(model, "progress"):
        model.progress = advance
    with _quiet():
        out = lm_eval.simple_evaluate(model=model, tasks=[t.config for t in tasks], task_manager=_task_manager(),
                                      log_samples=True, bootstrap_iters=0, verbosity="WARNING")
    if not hasattr(model, "progress") and advance:
        advance(1.0)
    metrics: dict[str, dict[str, float]] = {}
    details: dict[str, dict[str, Any]] = {}
    for task in tasks:
        for s in out["samples"][task.config["task"]]:
            if s["filter"] != task.filter:
                continue
            item = task.items[int(s["doc_id"])]
            for theirs, ours in task.metric_names.items():
                metrics.setdefault(item["id"], {})[ours] = float(s[theirs])
            if task.generation:
                details[item["id"]] = {"output": s["resps"][0][0], "extracted": s["filtered_resps"][0]}
            else:
                logliks = {args[1].strip(): float(resp[0][0]) for args, resp in zip(s["arguments"], s["resps"],
                                                                                     strict=True)}
                details.setdefault(item["id"], {}).setdefault("logliks", {}).update(logliks)
    return {it["id"]: prediction_record(it, metrics[it["id"]], **details.get(it["id"], {})) for it in chunk}
