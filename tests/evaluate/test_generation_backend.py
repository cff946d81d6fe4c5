"""Evaluation's generation tasks through a chosen backend: llama.cpp on the GGUF file or the transformers model."""

from __future__ import annotations

import pytest

from seapo.errors import InputError
from seapo.evaluate.config import EvalConfig
from seapo.evaluate.lm import EvalLM, generation_backend
from seapo.evaluate.runner import evaluate
from tests.evaluate.helpers import GENERATION_TASKS, evaluate_through

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'seapo[llamacpp]')")


def test_auto_is_transformers_and_llamacpp_is_opt_in_for_gguf_models(tiny_model):
    folder = EvalLM(str(tiny_model), dtype="fp32")
    assert generation_backend(folder, "auto") is folder.backend
    with pytest.raises(InputError, match="GGUF"):
        generation_backend(folder, "llamacpp")
    embedded = EvalLM("embedded", dtype="fp32")
    # auto stays on transformers: llama.cpp was measured slower at batch 16 here (docs/benchmarks.md)
    assert generation_backend(embedded, "auto") is embedded.backend
    chosen = generation_backend(embedded, "llamacpp", threads=1)
    try:
        assert chosen.name == "llamacpp" and chosen.config.batch_size == embedded.batch_size
    finally:
        chosen.close()
    assert generation_backend(embedded, "transformers") is embedded.backend


def test_generation_tasks_score_alike_through_either_backend(shared_data, tmp_path):
    """Two GSM8K and BBH items each: the same scores through both (their texts may differ, see
    docs/backends.md); lm-eval's stop sequences cut both; the cache keeps their results apart."""
    runs = evaluate_through(("llamacpp", "transformers"), shared_data, tmp_path)
    for task in ("gsm8k", "bbh"):
        assert runs["llamacpp"].tasks[task].metrics == runs["transformers"].tasks[task].metrics, task
    again = evaluate("embedded", EvalConfig(tasks=GENERATION_TASKS, limit=2, data_dir=str(shared_data / "eval"),
                                            out=str(tmp_path), run_name="llamacpp", generation_backend="llamacpp",
                                            backend={"dtype": "fp32"}))
    assert all(t.cached == 2 for t in again.tasks.values())
