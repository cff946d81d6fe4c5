"""One interface for every LLM backend (transformers, llama.cpp, OpenAI-compatible servers, vLLM; Ray builds on it).

A backend has a lifecycle (distilabel style):

1. construct it with its config -- cheap: nothing is loaded, so it can be built on a driver and
   shipped to a worker, and :meth:`GenerationBackend.fingerprint` already works;
2. :meth:`~GenerationBackend.load` -- load the model or open the connection (``generate`` loads
   on first use too, and ``with backend:`` loads and closes);
3. :meth:`~GenerationBackend.generate` (or ``agenerate``) -- a batch of
   :class:`GenerationRequest` in, one :class:`Generation` per request out, in order;
4. :meth:`~GenerationBackend.close` -- release the model or connection.

A request carries a chat (the backend applies the chat template) or raw text (used as it is),
its own decoding settings, ``n`` completions, stop sequences and whether token log-probs are
wanted. A request that fails comes back as a :class:`Generation` whose ``error`` says why;
the others in the batch are unaffected.

Backends register by name (:data:`BACKENDS`), by decorator or through the ``seapo.backends``
entry-point group, each with its own :class:`BackendConfig` subclass.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field

from seapo.config import SeapoConfig
from seapo.registry import Registry

Message = dict[str, str]
Conversation = list[Message]
Progress = Callable[[int], None]
FinishReason = Literal["stop", "length", "error"]


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt and how to decode it. Exactly one of ``messages`` and ``prompt`` is given."""

    messages: tuple[Message, ...] | list[Message] | None = None
    """A chat; the backend applies the model's chat template and the generation prompt."""
    prompt: str | None = None
    """Raw text, used as it is (no chat template): evaluation prompts, base models."""
    max_new_tokens: int = 1024
    """Upper bound on generated tokens per completion (the paper's injector: 1024)."""
    temperature: float = 0.0
    """0 means greedy decoding (the paper's choice); above 0 samples."""
    top_p: float = 1.0
    """Nucleus sampling mass, used only when ``temperature > 0``."""
    n: int = 1
    """Completions wanted (samples of one prompt)."""
    stop: tuple[str, ...] = ()
    """Stop sequences: a completion is cut before the first one (``finish_reason`` ``stop``)."""
    logprobs: bool = False
    """Return the log-probability of every generated token."""
    seed: int = 0
    """Seed of sampling, so sampled runs repeat."""
    json_schema: str | None = None
    """A JSON schema (as JSON text) the completion must follow: constrained decoding. Only backends
    with ``supports_json_schema`` honour it; the others fail such a request rather than pretend."""

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a GenerationRequest needs exactly one of messages= and prompt=")
        if self.max_new_tokens < 1 or self.n < 1 or self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"bad decoding settings: max_new_tokens={self.max_new_tokens}, n={self.n}, "
                             f"temperature={self.temperature}, top_p={self.top_p}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))

    @property
    def decoding(self) -> tuple[Any, ...]:
        """The settings that requests must share to run in one batch."""
        return (self.max_new_tokens, self.temperature, self.top_p, self.n, tuple(self.stop), self.logprobs,
                self.seed, self.json_schema)


@dataclass
class Completion:
    """One generated text and why it ended."""

    text: str
    finish_reason: FinishReason
    """``stop``: EOS or a stop sequence; ``length``: cut off by ``max_new_tokens``; ``error``: failed."""
    num_tokens: int = 0
    """Generated tokens (0 where a backend cannot tell)."""
    token_logprobs: list[float] | None = None
    """Log-probability of each generated token, when the request asked for them."""


@dataclass
class Generation:
    """The answer to one request: ``n`` completions, or an error with its reason."""

    completions: list[Completion] = field(default_factory=list)
    error: str | None = None
    """Why the request failed (None when it did not)."""

    @classmethod
    def failed(cls, reason: str) -> Generation:
        return cls([Completion("", "error")], error=reason)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The first completion's text ("" for a failed request)."""
        return self.completions[0].text if self.completions else ""

    @property
    def finish_reason(self) -> FinishReason:
        return self.completions[0].finish_reason if self.completions else "error"

    @property
    def num_tokens(self) -> int:
        return self.completions[0].num_tokens if self.completions else 0


class BackendConfig(SeapoConfig):
    """Settings every backend has; each backend subclasses it with its own fields."""

    name: str = Field("transformers", description="Backend: transformers (local, CPU or GPU), llamacpp (GGUF "
                      "files on CPU), openai (an OpenAI-compatible server), vllm (vLLM in process, on GPUs), or a "
                      "third-party one registered under the 'seapo.backends' entry points.",
                      json_schema_extra={"cli_name": "backend"})
    model: str = Field("embedded", description="Model: 'embedded', a Hugging Face folder, a .gguf file or a Hub "
                       "id (a served model name for servers).")
    batch_size: int = Field(16, ge=1, description="Requests generated together.")


def backend_config(value: Any) -> BackendConfig:
    """A backend config from a mapping (its ``name`` chooses the class) or a config object."""
    if isinstance(value, BackendConfig):
        return value
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of backend settings (name, model, ...)")
    name = value.get("name", "transformers")
    cls = BACKENDS.get(BACKENDS.check(name)).config_class
    return cls.model_validate(value)


class GenerationBackend(ABC):
    """Generates completions for batches of requests; see the module docstring for the lifecycle."""

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[BackendConfig]] = BackendConfig
    throughput_fields: ClassVar[frozenset[str]] = frozenset({"batch_size"})
    """Config fields that change speed, not outputs: left out of the fingerprint."""
    supports_json_schema: ClassVar[bool] = False
    """Whether it can constrain a completion to :attr:`GenerationRequest.json_schema`."""

    def __init__(self, config: BackendConfig | None = None) -> None:
        self.config = config if config is not None else self.config_class()
        self._loaded = False

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> None:
        """Load the model / open the connection; calling it again does nothing."""
        if not self._loaded:
            self._load()
            self._loaded = True

    @property
    def loaded(self) -> bool:
        return self._loaded

    def close(self) -> None:
        """Release what :meth:`load` acquired; the backend can be loaded again afterwards."""
        if self._loaded:
            self._close()
            self._loaded = False

    def __enter__(self) -> GenerationBackend:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ generation
    def generate(self, requests: Sequence[GenerationRequest], progress: Progress | None = None) -> list[Generation]:
        """One :class:`Generation` per request, in input order; ``progress(n)``: n more requests done."""
        self.load()
        if not requests:
            return []
        refused = self.refused(requests)
        if any(f is not None for f in refused):
            rest = [r for r, f in zip(requests, refused, strict=True) if f is None]
            done = iter(self.generate(rest, progress) if rest else [])
            if progress:
                progress(len(requests) - len(rest))
            return [f if f is not None else next(done) for f in refused]
        out = self._generate(list(requests), progress)
        if len(out) != len(requests):
            raise RuntimeError(f"backend '{self.name}' returned {len(out)} results for {len(requests)} requests")
        return out

    def refused(self, requests: Sequence[GenerationRequest]) -> list[Generation | None]:
        """Per request, a failed :class:`Generation` where it asks for JSON-schema decoding this backend
        cannot do (never decode unconstrained while the caller believes the output follows the
        schema), else None: the one check :meth:`generate` and native ``agenerate`` overrides share."""
        if self.supports_json_schema:
            return [None] * len(requests)
        reason = f"backend '{self.name}' does not support constrained (JSON-schema) decoding"
        return [Generation.failed(reason) if r.json_schema is not None else None for r in requests]

    async def agenerate(self, requests: Sequence[GenerationRequest],
                        progress: Progress | None = None) -> list[Generation]:
        """:meth:`generate` without blocking an event loop (backends with native async override it)."""
        return await asyncio.to_thread(self.generate, requests, progress)

    def fingerprint(self) -> str:
        """Stable id of the model and every setting that changes outputs; works before :meth:`load`."""
        from seapo.fingerprint import stable_hash

        return f"{self.name}:{stable_hash(self.config.model_dump(mode='json', exclude=set(self.throughput_fields)))}"

    # ------------------------------------------------------------------ for subclasses
    @abstractmethod
    def _load(self) -> None:
        """Load what :meth:`_generate` needs."""

    @abstractmethod
    def _generate(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        """Answer every request (a failed one as :meth:`Generation.failed`); results in input order."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


BACKENDS: Registry[type[GenerationBackend]] = Registry(
    "backend", "seapo.backends", builtin_modules=(
    "seapo.backends.transformers_backend", "seapo.backends.openai_backend", "seapo.backends.llamacpp_backend",
    "seapo.backends.vllm_backend"))
"""Every backend by name."""


def common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Number of leading items ``a`` and ``b`` share (token ids of two prompts, of a pair's two sides)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def register_backend(name: str):
    """Class decorator: make a :class:`GenerationBackend` subclass available by name."""
    return BACKENDS.register(name)


def available_backends() -> list[str]:
    return BACKENDS.names()


def make_backend(config: BackendConfig | dict[str, Any] | None = None, **fields: Any) -> GenerationBackend:
    """Build (not load) the backend a config names: ``make_backend({"name": "transformers", "model": ...})``
    or ``make_backend(model="embedded")``."""
    if isinstance(config, BackendConfig) and not fields:
        cfg = config
    else:
        base = config.model_dump() if isinstance(config, BackendConfig) else dict(config or {})
        cfg = _validated(base | fields)
    return BACKENDS.get(cfg.name)(cfg)


def _validated(data: dict[str, Any]) -> BackendConfig:
    from seapo.errors import ConfigError

    try:
        return backend_config(data)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc), field="name") from None
