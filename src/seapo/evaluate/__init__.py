"""Evaluation on the paper's five capability dimensions, and side-by-side comparison.

``evaluate(model, EvalConfig(...))`` runs a task suite (``seapo eval``); ``compare(paths)`` puts
runs side by side (``seapo compare``). Tasks are YAML files in ``tasks/`` naming their data loader
(:mod:`~seapo.evaluate.loaders`) and their engine: lm-evaluation-harness
(:mod:`~seapo.evaluate.lmeval_engine`, over seapo's scorer :mod:`~seapo.evaluate.lmeval_model`) or,
for HumanEval, seapo's sandbox (:mod:`~seapo.evaluate.humaneval`, :mod:`seapo.sandbox`).
"""

import sys

from seapo import _callable_stage
from seapo.evaluate.compare import CompareResult, compare
from seapo.evaluate.config import EvalConfig
from seapo.evaluate.results import EvalResult, TaskResult
from seapo.evaluate.runner import evaluate

__all__ = ["CompareResult", "EvalConfig", "EvalResult", "TaskResult", "compare", "evaluate"]

# seapo.evaluate(...) runs the stage even after a submodule import has bound this package to the name.
_callable_stage(sys.modules[__name__], "seapo.evaluate.runner:evaluate")
