"""seapo: Strategic Error Amplification preference optimisation (SeaPO, arXiv 2509.24781).

Every CLI command is a function here, so notebooks can do the same work::

    import seapo
    records = seapo.prepare("data.jsonl", out="run/records.jsonl")
    result = seapo.inject("run/records.jsonl", out_dir="run", injector="rules", strategy="mixed")

Names are loaded lazily so ``import seapo`` is fast and does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # models
    "resolve_model": "seapo.models",
    "load_causal_lm": "seapo.models",
    "load_tokenizer": "seapo.models",
    "embedded_model_dir": "seapo.models",
    # backends
    "make_backend": "seapo.backends",
    "GenerationConfig": "seapo.backends",
    # data
    "Record": "seapo.data.schema",
    "prepare": "seapo.data.prepare",
    "PrepareConfig": "seapo.data.prepare",
    # inject
    "ErrorType": "seapo.inject.error_types",
    "Verifier": "seapo.inject.verify",
    "VerifierConfig": "seapo.inject.verify",
    "RulesInjector": "seapo.inject.rules",
    "RulesInjectorConfig": "seapo.inject.rules",
    "LLMInjector": "seapo.inject.llm",
    "LLMInjectorConfig": "seapo.inject.llm",
    "inject": "seapo.inject.pipeline",
    "InjectConfig": "seapo.inject.pipeline",
    # train
    "train": "seapo.train.trainer",
    "TrainConfig": "seapo.train.config",
    "preference_accuracy": "seapo.train.heldout",
    # evaluate
    "evaluate": "seapo.evaluate.runner",
    "EvalConfig": "seapo.evaluate.runner",
    "compare": "seapo.evaluate.compare",
    # one-command pipeline
    "run": "seapo.pipeline.run",
    "RunConfig": "seapo.pipeline.config",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'seapo' has no attribute '{name}'")
