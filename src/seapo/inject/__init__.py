"""Error injection: error types, injectors (LLM, rules), verification, strategies, resumable runs."""

import sys

from seapo import _callable_stage
from seapo.inject.base import INJECTORS, Injection, Injector
from seapo.inject.strategies import STRATEGIES, Strategy

__all__ = ["INJECTORS", "STRATEGIES", "Injection", "Injector", "Strategy"]

# seapo.inject(...) runs the stage even after a submodule import has bound this package to the name.
_callable_stage(sys.modules[__name__], "seapo.inject.pipeline:inject")
