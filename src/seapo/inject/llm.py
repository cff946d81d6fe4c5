"""The LLM injector: ask a model to rewrite a response so it holds one named error type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

from seapo.backends import GenerationBackend, GenerationConfig, backend_config_class, make_backend
from seapo.data.schema import Record
from seapo.inject.base import Injection, Injector
from seapo.inject.error_types import ErrorType
from seapo.inject.prompts import INJECTION_PROMPT, build_injection_prompt, clean_injection_output


@dataclass
class LLMInjectorConfig:
    """Settings of :class:`LLMInjector`. Defaults follow the paper except the model, which is
    the offline embedded one; the paper used ``Qwen/Qwen2.5-7B-Instruct`` through vLLM."""

    model: str = "embedded"
    """Injector model: ``embedded``, a folder, a ``.gguf`` file or a Hub id (served name for servers)."""
    backend: str = "transformers"
    """Generation backend (see ``seapo.backends.available_backends()``)."""
    batch_size: int = 16
    """Prompts generated together."""
    max_new_tokens: int = 1024
    """Token limit of a revised response (the paper: 1024)."""
    temperature: float = 0.0
    """First attempt's temperature; 0 = greedy, as in the paper."""
    retry_temperature: float = 0.7
    """Greedy decoding repeats itself, so retries (attempt >= 1) sample at this temperature."""
    dtype: str = "auto"
    """Model dtype for local backends: auto, bf16, fp16 or fp32."""
    device: str | None = None
    """Device for local backends (default: CUDA when present, else CPU)."""
    prompt_template: str = INJECTION_PROMPT
    """Instruction with ``{error_type}``, ``{description}``, ``{question}``, ``{response}``."""
    backend_options: dict = field(default_factory=dict)
    """Extra fields of the backend's own config (for example ``base_url`` for a server)."""


class LLMInjector(Injector):
    name = "llm"

    def __init__(self, config: LLMInjectorConfig | None = None,
                 backend: GenerationBackend | None = None) -> None:
        self.config = config or LLMInjectorConfig()
        self.backend = backend or self._make_backend()

    def _make_backend(self) -> GenerationBackend:
        cfg = self.config
        config_cls = backend_config_class(cfg.backend)
        names = {f.name for f in fields(config_cls)}
        candidates = {"model": cfg.model, "batch_size": cfg.batch_size, "dtype": cfg.dtype,
                      "device": cfg.device, **cfg.backend_options}
        return make_backend(cfg.backend, **{k: v for k, v in candidates.items() if k in names})

    def fingerprint(self) -> str:
        cfg = self.config
        template = "paper" if cfg.prompt_template == INJECTION_PROMPT else str(hash(cfg.prompt_template))
        return (f"llm|{self.backend.fingerprint()}|max{cfg.max_new_tokens}|t{cfg.temperature}"
                f"|rt{cfg.retry_temperature}|prompt:{template}")

    def inject(self, records: Sequence[Record], error_type: ErrorType, *, attempt: int = 0,
               progress: Callable[[int], None] | None = None) -> list[Injection]:
        cfg = self.config
        conversations = [
            [{"role": "user", "content": build_injection_prompt(r.question, r.response, error_type,
                                                                cfg.prompt_template)}]
            for r in records
        ]
        generation = GenerationConfig(
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature if attempt == 0 else cfg.retry_temperature,
            seed=attempt,
        )
        outputs = self.backend.generate(conversations, generation, progress=progress)
        return [
            Injection(
                text=clean_injection_output(out.text, record.response),
                error_type=error_type,
                injector=self.name,
                truncated=out.finish_reason == "length",
                details={"raw": out.text, "finish_reason": out.finish_reason, "num_tokens": out.num_tokens,
                         "temperature": generation.temperature},
            )
            for record, out in zip(records, outputs, strict=True)
        ]

    def close(self) -> None:
        self.backend.close()
