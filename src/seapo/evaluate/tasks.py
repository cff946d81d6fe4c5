"""Task registry: each task is a YAML file in ``seapo/evaluate/tasks/`` (like lm-evaluation-harness).

A task file is data. It names

* its **data loader** (``loader``, one of :data:`seapo.evaluate.loaders.LOADERS`) and where the
  loader reads from (``data``: a local pattern under ``--data-dir`` and a Hub id);
* its **engine**: ``lm-eval`` -- lm-evaluation-harness builds the prompts, parses the answers and
  computes the metrics, from lm-eval's own shipped task YAMLs (``lmeval.tasks``) fed with the
  loader's items by one of seapo's mappings (``lmeval.mapping``, one of
  :data:`seapo.evaluate.lmeval_engine.MAPPINGS`) -- or ``sandbox`` for code, whose completions
  run only in :mod:`seapo.sandbox`;
* the protocol settings seapo sets: shots, stop sequences, generation length, sampling, which
  metrics are reported and how they are averaged.

Names of loaders and mappings are ``Literal`` types, so a misspelt one is reported with the
task file's name and line like any other bad value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from seapo.config import SeapoConfig
from seapo.errors import InputError
from seapo.fingerprint import stable_hash

TASK_DIR = Path(__file__).parent / "tasks"

Kind = Literal["multiple_choice", "generate", "code"]
Dimension = Literal["truthfulness", "knowledge", "math", "reasoning", "code"]
Engine = Literal["lm-eval", "sandbox"]
LoaderName = Literal["truthfulqa", "mmlu", "gsm8k", "math", "bbh", "humaneval"]
"""The data loaders of :mod:`seapo.evaluate.loaders` (a test keeps the two lists equal)."""
MappingName = Literal["truthfulqa_mc", "mmlu", "gsm8k_cot", "bbh_cot", "minerva_math"]
"""The item -> lm-eval document mappings of :mod:`seapo.evaluate.lmeval_engine`."""

SUITES: dict[str, list[str]] = {
    "paper": ["truthfulqa_mc", "mmlu", "gsm8k", "math", "bbh", "humaneval"],
    "quick": ["truthfulqa_mc", "mmlu"],
}
"""Suites: named task lists. ``paper`` is the paper's five-dimension protocol."""


class DataSource(SeapoConfig):
    """Where a task's items come from (read by the task's loader)."""

    local: str = Field(description="File (or glob) relative to --data-dir, e.g. truthfulqa/TruthfulQA.csv.")
    local_fewshot: str | None = Field(None, description="File or glob of few-shot examples relative to --data-dir "
                                                        "(MMLU's dev split), if any.")
    hub: str | None = Field(None, description="Hugging Face Hub dataset id used when no --data-dir is given "
                                              "(None: local only).")
    hub_config: str | None = Field(None, description="Hub dataset configuration name (e.g. 'all' for cais/mmlu).")
    hub_split: str = Field("test", description="Hub split holding the evaluation items.")
    hub_fewshot_split: str | None = Field(None, description="Hub split holding few-shot examples (MMLU: dev).")


class UpstreamTask(SeapoConfig):
    """One of lm-eval's own task YAMLs that a task is scored with."""

    config: str = Field(min_length=1, description="Path of the task YAML inside lm-eval's 'tasks' folder, e.g. "
                                                  "truthfulqa/truthfulqa_mc2.yaml: its prompt template, answer "
                                                  "filters and metrics are used as they are.")
    filter: str = Field("none", min_length=1, description="The lm-eval filter whose answers are scored (GSM8K: "
                                                          "flexible-extract; 'none' when the task has no filters).")
    metrics: dict[str, str] = Field(min_length=1, description="lm-eval metric -> seapo metric name (e.g. "
                                                              "TruthfulQA MC2's acc -> mc2).")


class LmEvalSettings(SeapoConfig):
    """How an ``lm-eval`` task reaches lm-evaluation-harness."""

    mapping: MappingName = Field(description="seapo's mapping from the loader's items to lm-eval documents "
                                             "and task configs (seapo.evaluate.lmeval_engine.MAPPINGS).")
    tasks: list[UpstreamTask] = Field(min_length=1, description="lm-eval's task YAMLs the mapping builds on.")


class GenerationSettings(SeapoConfig):
    """Extra sampled generations (HumanEval pass@k)."""

    samples: int = Field(0, ge=0, description="Sampled completions per item in addition to the greedy one "
                                              "(0: greedy only).")
    temperature: float = Field(0.8, ge=0, description="Sampling temperature of those completions.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus mass of those completions.")


class TaskSpec(SeapoConfig):
    """One evaluation task, as read from its YAML file (``TaskSpec.load(path, what="task")``)."""

    name: str = Field(min_length=1, description="Unique task name (the YAML file's stem).")
    dimension: Dimension = Field(description="Capability dimension of the paper it reports under.")
    description: str = Field("", description="One line for humans.")
    kind: Kind = Field(description="multiple_choice (log-likelihood of each choice), generate (greedy "
                                   "generation, answer parsed) or code (generation run in the sandbox).")
    loader: LoaderName = Field(description="The data loader (seapo.evaluate.loaders.LOADERS).")
    data: DataSource = Field(description="Where the loader reads the items from.")
    engine: Engine = Field(description="Who builds prompts, parses answers and computes metrics: lm-eval "
                                       "(lm-evaluation-harness) or sandbox (seapo's code execution).")
    lmeval: LmEvalSettings | None = Field(None, description="The lm-eval mapping and task YAMLs (engine lm-eval).")
    fewshot: int = Field(0, ge=0, description="Number of in-context examples.")
    stop: list[str] = Field(default_factory=list, description="Stop sequences of generation tasks; output is cut "
                                                              "at the first one.")
    max_new_tokens: int = Field(256, ge=1, description="Generation length limit.")
    generation: GenerationSettings = Field(default_factory=GenerationSettings,
                                           description="Sampled generations (code tasks' pass@k).")
    metrics: list[str] = Field(min_length=1, description="Metrics reported, in order; the first is the task's "
                                                         "headline number.")
    dimension_metrics: list[str] | None = Field(None, description="Metrics averaged into the dimension score "
                                                                  "(default: the first metric).")
    aggregate: Literal["mean", "macro"] = Field("mean", description="mean over items, or macro: mean over groups "
                                                                    "(MMLU subjects, BBH tasks) of group means.")

    @model_validator(mode="after")
    def _engine_fits(self) -> TaskSpec:
        if self.engine == "lm-eval":
            if self.lmeval is None:
                raise ValueError("an lm-eval task needs an 'lmeval' section (its mapping and lm-eval task YAMLs)")
            if self.kind == "code":
                raise ValueError("code tasks run in seapo's sandbox (engine: sandbox): lm-eval would execute "
                                 "model-written code outside it")
            produced = {ours for task in self.lmeval.tasks for ours in task.metrics.values()}
            missing = [m for m in self.metrics if m not in produced]
            if missing:
                raise ValueError(f"metrics {missing} are not produced by the lm-eval tasks (they give "
                                 f"{sorted(produced)})")
        elif self.kind != "code" or self.lmeval is not None:
            raise ValueError("engine 'sandbox' is for code tasks (kind: code) and takes no 'lmeval' section")
        unknown = [m for m in self.dimension_metrics or [] if m not in self.metrics]
        if unknown:
            raise ValueError(f"dimension_metrics {unknown} are not among the task's metrics {self.metrics}")
        return self

    def protocol_hash(self) -> str:
        """Hash of everything in the task file that changes an item's result: part of the cache key and
        of ``metrics.json`` (``seapo compare`` refuses runs whose hashes differ)."""
        return stable_hash(self.model_dump(exclude={"description", "dimension", "data", "aggregate",
                                                    "dimension_metrics"}), length=12)

    @property
    def headline_metrics(self) -> list[str]:
        return self.dimension_metrics or self.metrics[:1]


def available_tasks() -> list[str]:
    return sorted(p.stem for p in TASK_DIR.glob("*.yaml"))


def load_task_file(path: str | Path) -> TaskSpec:
    """Parse and validate one task YAML; errors name the file, the line and the field."""
    return TaskSpec.load(path, what="task")


def get_task(name: str) -> TaskSpec:
    """A registered task by name, or a path to a task YAML file."""
    if name.endswith((".yaml", ".yml")):
        return load_task_file(name)
    path = TASK_DIR / f"{name}.yaml"
    if not path.is_file():
        raise InputError(f"unknown task '{name}'; known: {', '.join(available_tasks())} "
                         f"(or give a path to a task .yaml)", field="tasks")
    return load_task_file(path)


def suite_tasks(suite: str) -> list[str]:
    if suite not in SUITES:
        raise InputError(f"unknown suite '{suite}'; known: {', '.join(SUITES)}", field="suite")
    return list(SUITES[suite])
