"""Shared test helpers: a canned generation backend, EvalConfig with backend settings."""

from __future__ import annotations

from typing import Any

from seapo.backends.base import Completion, Generation, GenerationBackend, GenerationRequest, Progress
from seapo.evaluate.config import EvalConfig

BACKEND_FIELDS = ("model", "dtype", "device", "batch_size", "trust_remote_code")


def eval_config(**fields: Any) -> EvalConfig:
    """``EvalConfig`` taking the backend's settings (dtype, batch_size, ...) flat, as tests like to write them."""
    backend = {**fields.pop("backend", {}), **{k: fields.pop(k) for k in BACKEND_FIELDS if k in fields}}
    return EvalConfig(**fields, backend=backend)


class CannedBackend(GenerationBackend):
    """Answers every request with the next canned text (cycling) and records the requests."""

    name = "canned"

    def __init__(self, texts: list[str]) -> None:
        super().__init__()
        self.texts = texts
        self.requests: list[GenerationRequest] = []

    def _load(self) -> None:
        pass

    def _generate(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        out = []
        for request in requests:
            self.requests.append(request)
            text = self.texts[(len(self.requests) - 1) % len(self.texts)]
            out.append(Generation([Completion(text, "stop") for _ in range(request.n)]))
        if progress:
            progress(len(requests))
        return out
