"""Evaluation on the paper's five capability dimensions, and side-by-side comparison.

``evaluate(model, EvalConfig(...))`` runs a task suite (``seapo eval``); ``compare(paths)``
puts runs side by side (``seapo compare``). Tasks are YAML files in ``tasks/``.
"""

from seapo.evaluate.compare import CompareResult, compare
from seapo.evaluate.runner import EvalConfig, EvalResult, TaskResult, evaluate

__all__ = ["CompareResult", "EvalConfig", "EvalResult", "TaskResult", "compare", "evaluate"]
