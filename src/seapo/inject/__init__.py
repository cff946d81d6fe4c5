"""Error injection: error types, injectors (LLM, rules), verification, strategies, resumable runs."""

from seapo.inject.base import INJECTORS, Injection, Injector
from seapo.inject.strategies import STRATEGIES, Strategy

__all__ = ["INJECTORS", "STRATEGIES", "Injection", "Injector", "Strategy"]
