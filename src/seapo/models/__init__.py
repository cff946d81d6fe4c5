"""Model resolution and loading: one entry point for every model argument."""

from seapo.io import cache_dir
from seapo.models.loading import load_causal_lm, load_tokenizer
from seapo.models.resolve import EMBEDDED_NAME, ResolvedModel, embedded_model_dir, resolve_model

__all__ = [
    "EMBEDDED_NAME",
    "ResolvedModel",
    "cache_dir",
    "embedded_model_dir",
    "load_causal_lm",
    "load_tokenizer",
    "resolve_model",
]
