"""Evaluation's generation tasks through vLLM (``generation_backend: vllm``): refused with the reason where
vLLM or a GPU is missing (here), and, where both are present, scored like the transformers backend."""

from __future__ import annotations

import pytest

from seapo.errors import ConfigError, InputError
from seapo.evaluate.config import EvalConfig
from seapo.evaluate.lm import EvalLM, generation_backend, vllm_ready
from seapo.pipeline.config import RunConfig
from tests.evaluate.helpers import evaluate_through


@pytest.mark.skipif(vllm_ready() is None, reason="vLLM and a GPU are here: the refusal cannot be seen")
def test_vllm_is_refused_with_the_reason_where_it_cannot_run(tiny_model):
    lm = EvalLM(str(tiny_model), dtype="fp32")
    with pytest.raises(InputError, match=r"seapo\[vllm\]|CUDA GPU") as err:
        generation_backend(lm, "vllm")
    assert err.value.field == "generation_backend"
    assert lm.generator is lm.backend


def test_vllm_settings_validate_and_a_run_may_generate_with_it():
    assert EvalConfig(generation_backend="vllm", vllm_gpu_memory=0.3).vllm_gpu_memory == 0.3
    with pytest.raises(ConfigError, match="vllm_gpu_memory"):
        EvalConfig(vllm_gpu_memory=1.0)  # all of it would leave nothing for the scorer
    # Unlike llamacpp, vLLM loads the trained model (a transformers folder), so base and trained can share it.
    run = RunConfig.model_validate({"eval": {"generation_backend": "vllm"}})
    assert run.eval.generation_backend == "vllm"


@pytest.mark.skipif(vllm_ready() is not None, reason=str(vllm_ready()))
def test_generation_tasks_score_alike_through_vllm_and_transformers(shared_data, tmp_path):
    runs = evaluate_through(("vllm", "transformers"), shared_data, tmp_path)
    for task in ("gsm8k", "bbh"):
        assert runs["vllm"].tasks[task].metrics == runs["transformers"].tasks[task].metrics, task
