"""Shared test helpers: a canned generation backend, EvalConfig with backend settings, generation tasks
run through each of several generation backends."""

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


GENERATION_TASKS = ["gsm8k", "bbh:boolean_expressions"]


def evaluate_through(names: tuple[str, ...], shared_data: Any, out: Any, limit: int = 2) -> dict[str, Any]:
    """GSM8K and one BBH task, ``limit`` items each, on the embedded model (fp32) through each generation
    backend of ``names``: checks that none reuses another's cached results, that metrics.json records the
    backend, and that lm-eval's stop sequence cut every output. Returns the EvalResult per backend."""
    from seapo.evaluate.runner import evaluate
    from seapo.io import read_jsonl

    runs = {}
    for name in names:
        config = EvalConfig(tasks=GENERATION_TASKS, limit=limit, data_dir=str(shared_data / "eval"), out=str(out),
                            run_name=name, generation_backend=name, backend={"dtype": "fp32"})
        runs[name] = evaluate("embedded", config)
        assert all(t.cached == 0 for t in runs[name].tasks.values())  # the other backend's results are not reused
        for task in GENERATION_TASKS:
            task = task.partition(":")[0]
            assert runs[name].tasks[task].settings["generation_backend"] == name
            records = read_jsonl(runs[name].out_dir / "predictions" / f"{task}.jsonl")
            assert len(records) == limit and all("error" not in r and "\n\n" not in r["output"] for r in records)
    return runs
