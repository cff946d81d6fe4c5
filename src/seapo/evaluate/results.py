"""What an evaluation produces: per-item prediction records, per-task scores, the run's result.

Shared by the runner and both engines (lm-eval and the HumanEval sandbox), which is why it is
its own module: the engines write records, the runner aggregates them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def prediction_record(item: dict, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A predictions line: item id, group, reference, numeric metrics and everything else scored.

    ``metrics`` holds the per-item scores (floats) and any details the scorer adds (an extracted
    answer, sandbox results); ``extra`` the model's output (text, log-likelihoods, samples) and,
    for an item the model failed on, ``error``.
    """
    numbers = {k: v for k, v in metrics.items() if isinstance(v, float)}
    details = {k: v for k, v in metrics.items() if not isinstance(v, float)}
    reference = {k: item[k] for k in ("target", "label", "best") if k in item}
    return {"id": item["id"], "group": item["group"], **reference, "metrics": numbers, **details, **extra}


@dataclass
class TaskResult:
    """Scores of one task."""

    name: str
    dimension: str
    metrics: dict[str, float]
    """Metric -> score in [0, 1] (``mean`` or ``macro`` over groups, as the task says)."""
    n: int
    """Items evaluated."""
    n_available: int
    """Items the task's data has (more than ``n`` when ``limit`` or groups restrict it)."""
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per-group scores (MMLU subjects, BBH tasks)."""
    cached: int = 0
    """Items taken from the cache instead of being computed."""
    errors: int = 0
    """Items whose generation failed (scored 0, not cached; the predictions file says why)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Protocol settings: shots, stop sequences, generation length, samples, and what ``seapo compare``
    checks -- ``engine``, ``lm_eval_version``, ``task_versions``, ``protocol_hash``."""
    source: str = ""
    """Where the data came from."""
    seconds: float = 0.0
    """Wall time spent on this task."""

    @property
    def subset(self) -> bool:
        return self.n < self.n_available


@dataclass
class EvalResult:
    """What :func:`seapo.evaluate.runner.evaluate` returns; ``metrics.json`` is ``to_dict()``."""

    model: dict[str, str]
    tasks: dict[str, TaskResult]
    skipped: dict[str, str]
    """Task -> why it was not evaluated (e.g. "data not available: ...")."""
    dimensions: dict[str, float]
    """Dimension -> mean of its tasks' headline metrics."""
    config: dict[str, Any]
    out_dir: Path
    versions: dict[str, str]
    seconds: float = 0.0

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.json"

    def to_dict(self) -> dict[str, Any]:
        tasks = {}
        for name, t in self.tasks.items():
            entry = asdict(t)
            entry["subset"] = t.subset
            tasks[name] = entry
        return {
            "model": self.model, "tasks": tasks, "skipped": self.skipped, "dimensions": self.dimensions,
            "subset": any(t.subset for t in self.tasks.values()), "config": self.config,
            "versions": self.versions, "seconds": round(self.seconds, 2),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
