"""The LLM injector: ask a model to rewrite a response so it holds one named error type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field, SerializeAsAny, field_validator

from seapo.backends import BackendConfig, GenerationBackend, GenerationRequest, backend_config, make_backend
from seapo.config import SeapoConfig, check_template
from seapo.data.schema import Record
from seapo.fingerprint import stable_hash
from seapo.inject.base import INJECTORS, Injection, Injector
from seapo.inject.error_types import ErrorType
from seapo.inject.prompts import INJECTION_PROMPT, build_injection_prompt, clean_injection_output
from seapo.inject.verify import VerifierConfig


def _default_backend() -> BackendConfig:
    return backend_config({"name": "transformers"})


class LLMInjectorConfig(SeapoConfig):
    """Settings of :class:`LLMInjector`. Defaults follow the paper except the model, which is the
    offline embedded one; the paper used ``Qwen/Qwen2.5-7B-Instruct`` through vLLM."""

    backend: SerializeAsAny[BackendConfig] = Field(
        default_factory=_default_backend,
        description="The generation backend and its model: a mapping with 'name' (default transformers), 'model', "
                    "'batch_size' and the backend's own settings.")
    max_new_tokens: int = Field(1024, ge=1, description="Token limit of a revised response (the paper: 1024).")
    temperature: float = Field(0.0, ge=0.0, description="First attempt's temperature; 0 = greedy, as in the paper.")
    retry_temperature: float = Field(0.7, gt=0.0, description="Greedy decoding repeats itself, so retries "
                                                              "(attempt >= 1) sample at this temperature.")
    prompt_template: str = Field(INJECTION_PROMPT, description="Instruction with the placeholders {error_type}, "
                                 "{description}, {question} and {response} (default: the paper's prompt).")

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: Any) -> BackendConfig:
        return backend_config(value)

    @field_validator("prompt_template")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return check_template(value, ("error_type", "description", "question", "response"), "response",
                              "the text to rewrite")


@INJECTORS.register("llm")
class LLMInjector(Injector):
    """Rewrites each positive through a :class:`~seapo.backends.GenerationBackend`; a request the
    backend fails comes back as an injection with ``error`` set, for the pipeline to retry."""

    config_class = LLMInjectorConfig
    config: LLMInjectorConfig

    def __init__(self, config: LLMInjectorConfig | None = None, backend: GenerationBackend | None = None, *,
                 verifier: VerifierConfig | None = None) -> None:
        super().__init__(config, verifier=verifier)
        self.backend = backend or make_backend(self.config.backend)

    def fingerprint(self) -> str:
        cfg = self.config
        settings = stable_hash([cfg.max_new_tokens, cfg.temperature, cfg.retry_temperature, cfg.prompt_template])
        return f"llm|{self.backend.fingerprint()}|{settings}"

    def load(self) -> None:
        self.backend.load()

    def inject(self, records: Sequence[Record], error_type: ErrorType, *, attempt: int = 0,
               progress: Callable[[int], None] | None = None) -> list[Injection]:
        cfg = self.config
        temperature = cfg.temperature if attempt == 0 else cfg.retry_temperature
        requests = [GenerationRequest(
            messages=[{"role": "user", "content": build_injection_prompt(r.question, r.response, error_type,
                                                                         cfg.prompt_template)}],
            max_new_tokens=cfg.max_new_tokens, temperature=temperature, seed=attempt) for r in records]
        outputs = self.backend.generate(requests, progress=progress)
        injections = []
        for record, out in zip(records, outputs, strict=True):
            details = {"raw": out.text, "finish_reason": out.finish_reason, "num_tokens": out.num_tokens,
                       "temperature": temperature}
            if not out.ok:
                injections.append(Injection(None, error_type, self.name, details=details, error=out.error))
                continue
            injections.append(Injection(clean_injection_output(out.text, record.response), error_type, self.name,
                                        truncated=out.finish_reason == "length", details=details))
        return injections

    def close(self) -> None:
        self.backend.close()
