"""seapo: Strategic Error Amplification preference optimisation (SeaPO, arXiv 2509.24781).

Every CLI command is a function here, with the same config class as its options::

    import seapo
    seapo.prepare("data.jsonl", out="run/records.jsonl")
    result = seapo.inject("run/records.jsonl", "run/inject", seapo.InjectConfig(injector="rules"))

The extension points -- :class:`GenerationBackend`, :class:`Injector` and :class:`Strategy`,
each with its registry -- are here too (docs/architecture.md shows how to add each).

Names are loaded lazily so ``import seapo`` is fast and does not import torch.
"""

from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # config layer and errors
    "SeapoConfig": "seapo.config",
    "SeapoError": "seapo.errors",
    "InputError": "seapo.errors",
    "ConfigError": "seapo.errors",
    # models
    "resolve_model": "seapo.models",
    "load_causal_lm": "seapo.models",
    "load_tokenizer": "seapo.models",
    "embedded_model_dir": "seapo.models",
    # backends: the extension point for LLM engines
    "GenerationBackend": "seapo.backends",
    "BackendConfig": "seapo.backends",
    "GenerationRequest": "seapo.backends",
    "Generation": "seapo.backends",
    "Completion": "seapo.backends",
    "BACKENDS": "seapo.backends",
    "register_backend": "seapo.backends",
    "make_backend": "seapo.backends",
    # data
    "Record": "seapo.data.schema",
    "prepare": "seapo.data.prepare",
    "PrepareConfig": "seapo.data.prepare",
    "PrepareResult": "seapo.data.prepare",
    # inject: error types, the injector and strategy extension points, the run
    "ErrorType": "seapo.inject.error_types",
    "Injector": "seapo.inject.base",
    "Injection": "seapo.inject.base",
    "INJECTORS": "seapo.inject.base",
    "Strategy": "seapo.inject.strategies",
    "STRATEGIES": "seapo.inject.strategies",
    "Verifier": "seapo.inject.verify",
    "VerifierConfig": "seapo.inject.verify",
    "Verification": "seapo.inject.verify",
    "RulesInjector": "seapo.inject.rules",
    "RulesInjectorConfig": "seapo.inject.rules",
    "LLMInjector": "seapo.inject.llm",
    "LLMInjectorConfig": "seapo.inject.llm",
    "inject": "seapo.inject.pipeline",
    "InjectConfig": "seapo.inject.pipeline",
    "InjectResult": "seapo.inject.pipeline",
    # the LLM judge and the policy's error profile (seapo.profile.profile runs it)
    "LLMJudge": "seapo.judge.llm",
    "LLMJudgeConfig": "seapo.judge.llm",
    "ProfileConfig": "seapo.profile.config",
    "ProfileResult": "seapo.profile.run",
    # train
    "train": "seapo.train.trainer",
    "TrainConfig": "seapo.train.config",
    "TrainResult": "seapo.train.trainer",
    "preference_accuracy": "seapo.train.heldout",
    "tune": "seapo.train.tune",
    "TuneConfig": "seapo.train.tune",
    "TuneResult": "seapo.train.tune",
    # evaluate
    "evaluate": "seapo.evaluate.runner",
    "EvalConfig": "seapo.evaluate.runner",
    "EvalResult": "seapo.evaluate.runner",
    "compare": "seapo.evaluate.compare",
    # the run inspector (report.html)
    "inspect_run": "seapo.inspect",
    "InspectConfig": "seapo.inspect",
    # one-command pipeline
    "run": "seapo.pipeline.run",
    "RunConfig": "seapo.pipeline.config",
    "RunResult": "seapo.pipeline.run",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # for IDEs and type checkers; at run time the names load on first use
    from seapo.backends import (
        BACKENDS,
        BackendConfig,
        Completion,
        Generation,
        GenerationBackend,
        GenerationRequest,
        make_backend,
        register_backend,
    )
    from seapo.config import SeapoConfig
    from seapo.data.prepare import PrepareConfig, PrepareResult, prepare
    from seapo.data.schema import Record
    from seapo.errors import ConfigError, InputError, SeapoError
    from seapo.evaluate.compare import compare
    from seapo.evaluate.runner import EvalConfig, EvalResult, evaluate
    from seapo.inject.base import INJECTORS, Injection, Injector
    from seapo.inject.error_types import ErrorType
    from seapo.inject.llm import LLMInjector, LLMInjectorConfig
    from seapo.inject.pipeline import InjectConfig, InjectResult, inject
    from seapo.inject.rules import RulesInjector, RulesInjectorConfig
    from seapo.inject.strategies import STRATEGIES, Strategy
    from seapo.inject.verify import Verification, Verifier, VerifierConfig
    from seapo.inspect import InspectConfig, inspect_run
    from seapo.models import embedded_model_dir, load_causal_lm, load_tokenizer, resolve_model
    from seapo.pipeline.config import RunConfig
    from seapo.pipeline.run import RunResult, run
    from seapo.train.config import TrainConfig
    from seapo.train.heldout import preference_accuracy
    from seapo.train.trainer import TrainResult, train
    from seapo.train.tune import TuneConfig, TuneResult, tune


class _StageModule(types.ModuleType):
    """A stage package that also runs its stage when called. Importing any submodule of
    ``seapo.inject`` makes Python bind ``seapo.inject`` to the package, over the function this
    module exports lazily; so the package forwards calls, and ``seapo.inject(...)`` works
    whatever was imported before."""

    _stage: tuple[str, str]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, name = self._stage
        return getattr(importlib.import_module(module), name)(*args, **kwargs)


def _callable_stage(module: types.ModuleType, function: str) -> None:
    """Make the package ``module`` call ``function`` (``"seapo.inject.pipeline:inject"``)."""
    module.__class__ = _StageModule
    module._stage = tuple(function.split(":"))  # type: ignore[attr-defined]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'seapo' has no attribute '{name}'")
