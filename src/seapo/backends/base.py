"""One interface for every LLM backend (transformers, OpenAI-compatible servers, vLLM, ...).

A backend turns a batch of chat conversations into completions. Everything above it
(injectors, evaluation) talks to this interface only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Message = dict[str, str]
Conversation = list[Message]


@dataclass
class GenerationConfig:
    """How to decode. The defaults are the paper's injector settings."""

    max_new_tokens: int = 1024
    """Upper bound on generated tokens per completion (the paper: 1024)."""
    temperature: float = 0.0
    """0 means greedy decoding (the paper's choice); above 0 samples."""
    top_p: float = 1.0
    """Nucleus sampling mass, used only when ``temperature > 0``."""
    seed: int = 0
    """Seed for sampling, so sampled runs repeat."""


@dataclass
class Generation:
    """One completion and why it ended."""

    text: str
    finish_reason: Literal["stop", "length"]
    """``stop``: the model ended it; ``length``: cut off by ``max_new_tokens``."""
    num_tokens: int = 0
    """Generated tokens (0 where a backend cannot tell)."""


@dataclass
class BackendConfig:
    """Settings shared by all backends; each backend subclasses it with its own fields."""

    model: str = "embedded"
    """Model argument (see :func:`seapo.models.resolve_model`; a served model name for servers)."""
    batch_size: int = 16
    """Conversations sent together."""
    extra: dict = field(default_factory=dict)
    """Backend-specific keyword arguments passed through untouched."""


class GenerationBackend(ABC):
    """Generates chat completions for batches of conversations."""

    name: str = "base"

    @abstractmethod
    def generate(self, conversations: Sequence[Conversation], config: GenerationConfig,
                 progress: Callable[[int], None] | None = None) -> list[Generation]:
        """Complete each conversation; results in input order. ``progress(n)`` reports n more done."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A stable string naming the model and settings, used in resume keys and reports."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (models, connections)."""


_REGISTRY: dict[str, tuple[type[BackendConfig], Callable[[BackendConfig], GenerationBackend]]] = {}


def register_backend(name: str, config_cls: type[BackendConfig]):
    """Class decorator: make a backend constructible by name through :func:`make_backend`."""

    def wrap(cls):
        cls.name = name
        _REGISTRY[name] = (config_cls, cls)
        return cls

    return wrap


def available_backends() -> list[str]:
    _import_builtin_backends()
    return sorted(_REGISTRY)


def backend_config_class(name: str) -> type[BackendConfig]:
    _import_builtin_backends()
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend '{name}': choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name][0]


def make_backend(name: str, config: BackendConfig | None = None, **fields) -> GenerationBackend:
    """Build a backend by name, from a config object or from keyword fields of its config."""
    config_cls = backend_config_class(name)
    config = config or config_cls(**fields)
    return _REGISTRY[name][1](config)


def _import_builtin_backends() -> None:
    # Imported lazily so that `import seapo` stays fast and optional backends stay optional.
    import seapo.backends.transformers_backend  # noqa: F401
