"""Task registry: each task is a YAML file in ``seapo/evaluate/tasks/`` (like lm-evaluation-harness).

A YAML file says *what* to evaluate (data source, shots, prompt builder, stop sequences,
generation length, metric); Python in :mod:`seapo.evaluate.builders` supplies only what YAML
cannot express -- data loaders, prompt builders and scorers -- referenced by name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from seapo.errors import InputError
from seapo.config import SeapoConfig

TASK_DIR = Path(__file__).parent / "tasks"

Kind = Literal["multiple_choice", "truthfulqa_mc", "generate", "code"]
Dimension = Literal["truthfulness", "knowledge", "math", "reasoning", "code"]

#: Suites: named task lists. ``paper`` is the paper's five-dimension protocol.
SUITES: dict[str, list[str]] = {
    "paper": ["truthfulqa_mc", "mmlu", "gsm8k", "math", "bbh", "humaneval"],
    "quick": ["truthfulqa_mc", "mmlu"],
}


class DataSource(BaseModel):
    """Where a task's items come from."""

    model_config = ConfigDict(extra="forbid")

    local: str
    """File (or glob) relative to ``--data-dir``, e.g. ``truthfulqa/TruthfulQA.csv``."""
    local_fewshot: str | None = None
    """File or glob of few-shot examples relative to ``--data-dir`` (MMLU's dev split), if any."""
    hub: str | None = None
    """Hugging Face Hub dataset id used when no ``--data-dir`` is given (None: local only)."""
    hub_config: str | None = None
    """Hub dataset configuration name (e.g. ``all`` for ``cais/mmlu``)."""
    hub_split: str = "test"
    """Hub split holding the evaluation items."""
    hub_fewshot_split: str | None = None
    """Hub split holding few-shot examples (MMLU: ``dev``)."""


class GenerationSettings(BaseModel):
    """Extra sampled generations (HumanEval pass@k)."""

    model_config = ConfigDict(extra="forbid")

    samples: int = 0
    """Sampled completions per item in addition to the greedy one (0: greedy only)."""
    temperature: float = 0.8
    """Sampling temperature of those completions."""
    top_p: float = 0.95
    """Nucleus mass of those completions."""


class TaskSpec(BaseModel):
    """One evaluation task, as read from its YAML file. Every field is documented in the file too."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Unique task name (the YAML file's stem)."""
    dimension: Dimension
    """Capability dimension of the paper it reports under."""
    description: str = ""
    """One line for humans."""
    kind: Kind
    """``multiple_choice`` (log-likelihood of each choice), ``truthfulqa_mc`` (MC1 + MC2),
    ``generate`` (greedy generation + scorer) or ``code`` (generation + sandboxed execution)."""
    data: DataSource
    """Data source."""
    loader: str
    """Name of the data loader in :data:`seapo.evaluate.builders.LOADERS`."""
    fewshot: int = 0
    """Number of in-context examples."""
    prompt: str
    """Name of the prompt builder in :data:`seapo.evaluate.builders.PROMPTS`."""
    choice_texts: list[str] | None = None
    """Fixed continuations scored for every item (MMLU: A-D); default: the item's own choices."""
    target_delimiter: str = " "
    """Put between the prompt and each choice for log-likelihood tasks (lm-eval's default)."""
    stop: list[str] = Field(default_factory=list)
    """Stop sequences for generation tasks; output is cut at the first one."""
    max_new_tokens: int = 256
    """Generation length limit."""
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    """Sampled generations (code tasks' pass@k)."""
    scorer: str
    """Name of the per-item scorer in :data:`seapo.evaluate.builders.SCORERS`."""
    metrics: list[str]
    """Metrics reported, in order; the first is the task's headline number."""
    dimension_metrics: list[str] | None = None
    """Metrics averaged into the dimension score (default: the first metric)."""
    aggregate: Literal["mean", "macro"] = "mean"
    """``mean`` over items, or ``macro``: mean over groups (MMLU subjects, BBH tasks) of group means."""

    def protocol_hash(self) -> str:
        """Hash of everything that changes an item's result: part of the cache key."""
        fields = self.model_dump(exclude={"description", "dimension", "data", "aggregate", "dimension_metrics"})
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def headline_metrics(self) -> list[str]:
        return self.dimension_metrics or self.metrics[:1]


def available_tasks() -> list[str]:
    return sorted(p.stem for p in TASK_DIR.glob("*.yaml"))


def load_task_file(path: str | Path) -> TaskSpec:
    """Parse and validate one task YAML; errors name the file and the field."""
    path = Path(path)
    spec = TaskSpec.load(path, what="task")
    from seapo.evaluate import builders

    for kind, table, name in (("loader", builders.LOADERS, spec.loader), ("prompt", builders.PROMPTS, spec.prompt),
                              ("scorer", builders.SCORERS, spec.scorer)):
        if name not in table:
            raise InputError(f"unknown {kind} '{name}'; known: {', '.join(sorted(table))}", path=str(path),
                             field=kind)
    return spec


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
