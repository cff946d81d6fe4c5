"""What of the vllm backend runs without vLLM or a GPU: its registration, config validation, fingerprint, and
the translation of seapo's settings into vLLM's arguments (plain dicts, checked here as such; that vLLM's own
classes accept them is checked where vLLM is installed, and the engine itself in test_vllm_backend.py)."""

import json

import pytest

from seapo.backends import GenerationRequest, available_backends, make_backend
from seapo.backends.vllm_backend import (
    VLLMBackendConfig,
    engine_kwargs,
    request_seed,
    sampling_kwargs,
    structured_kwargs,
)
from seapo.errors import ConfigError, InputError
from seapo.inject.pipeline import InjectConfig


def vllm_installed() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def test_registered_and_built_without_loading():
    assert "vllm" in available_backends()
    backend = make_backend(name="vllm", model="embedded", tensor_parallel_size=2)
    assert backend.name == "vllm" and not backend.loaded and backend.supports_json_schema
    assert backend.config.tensor_parallel_size == 2 and backend.config.batch_size == 256


@pytest.mark.parametrize(("field", "value"), [("tensor_parallel_size", 0), ("gpu_memory_utilization", 0),
                                              ("gpu_memory_utilization", 1.5), ("max_model_len", 8),
                                              ("dtype", "fp8"), ("batch_size", 0), ("seed", -1)])
def test_bad_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError) as err:
        make_backend(name="vllm", **{field: value})
    assert field in str(err.value)


def test_its_settings_validate_inside_an_inject_config():
    config = InjectConfig(llm={"backend": {"name": "vllm", "model": "embedded", "max_model_len": 4096,
                                           "dtype": "bfloat16", "enable_prefix_caching": False}})
    backend = config.llm.backend
    assert isinstance(backend, VLLMBackendConfig) and backend.dtype == "bf16" and not backend.enable_prefix_caching
    assert InjectConfig.model_validate(config.model_dump()).llm.backend == backend
    with pytest.raises(ConfigError, match="tensor_parallel_size"):
        InjectConfig(llm={"backend": {"name": "vllm", "tensor_parallel_size": -1}})


def test_fingerprint_needs_no_vllm_and_ignores_speed_settings(embedded_model):
    key = make_backend(name="vllm", model="embedded").fingerprint()
    speed = make_backend(name="vllm", model="embedded", batch_size=8, tensor_parallel_size=4, max_model_len=2048,
                         gpu_memory_utilization=0.5, enable_prefix_caching=False, enforce_eager=True)
    assert speed.fingerprint() == key
    assert make_backend(name="vllm", model=str(embedded_model)).fingerprint() == key  # content, not the name
    assert make_backend(name="vllm", model="embedded", dtype="bf16").fingerprint() != key
    assert make_backend(name="vllm", model="embedded", seed=1).fingerprint() != key
    assert key.startswith("vllm:") and key != make_backend(name="transformers", model="embedded").fingerprint()


def test_engine_arguments_carry_every_setting():
    cfg = VLLMBackendConfig(model="x", dtype="bf16", tensor_parallel_size=2, batch_size=64, max_model_len=8192,
                            enable_prefix_caching=False, gpu_memory_utilization=0.5, enforce_eager=True, seed=7)
    assert engine_kwargs(cfg, "/models/x") == {
        "model": "/models/x", "tokenizer": "/models/x", "dtype": "bfloat16", "tensor_parallel_size": 2,
        "enable_prefix_caching": False, "gpu_memory_utilization": 0.5, "max_num_seqs": 64, "enforce_eager": True,
        "seed": 7, "trust_remote_code": False, "max_model_len": 8192}
    auto = engine_kwargs(VLLMBackendConfig(), "/m")
    assert auto["dtype"] == "auto" and "max_model_len" not in auto  # None: the model's own length


def test_request_settings_become_sampling_fields():
    greedy = sampling_kwargs(GenerationRequest(prompt="x", max_new_tokens=9, top_p=0.5, stop=("\n\n",),
                                               logprobs=True), base_seed=0)
    # greedy ignores top_p and needs no seed; logprobs=0 asks for the sampled token's log-prob only
    assert greedy == {"n": 1, "max_tokens": 9, "temperature": 0.0, "top_p": 1.0, "stop": ["\n\n"], "logprobs": 0}
    request = GenerationRequest(prompt="x", temperature=0.8, top_p=0.9, n=4, seed=3)
    sampled = sampling_kwargs(request, base_seed=5)
    assert sampled == {"n": 4, "max_tokens": 1024, "temperature": 0.8, "top_p": 0.9, "seed": request_seed(5, request)}
    # greedy n > 1: one completion asked for (the backend copies it; older vLLMs refuse n > 1 when greedy)
    assert sampling_kwargs(GenerationRequest(prompt="x", n=3), base_seed=0)["n"] == 1
    seeds = {request_seed(b, GenerationRequest(prompt="x", seed=s)) for b in range(3) for s in range(3)}
    assert len(seeds) == 9 and all(0 <= s < 2**63 - 1 for s in seeds)


def test_a_bad_schema_fails_before_reaching_vllm():
    with pytest.raises(json.JSONDecodeError):
        structured_kwargs("{not json", sampling_module=None)


@pytest.mark.skipif(vllm_installed(), reason="vLLM is installed here: the no-vLLM error cannot be seen")
def test_loading_without_vllm_says_what_to_install():
    backend = make_backend(name="vllm", model="embedded")
    with pytest.raises(InputError, match=r"seapo\[vllm\]") as err:
        backend.load()
    assert err.value.field == "backend.name" and not backend.loaded


@pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed (pip install 'seapo[vllm]')")
def test_vllms_own_sampling_params_accept_the_translation():
    """No GPU needed: SamplingParams is a plain class. The JSON schema lands in whichever field this vLLM has."""
    import vllm.sampling_params as sp

    request = GenerationRequest(prompt="x", temperature=0.7, n=3, seed=2, stop=("END",), logprobs=True,
                                json_schema=json.dumps({"type": "object"}))
    kwargs = sampling_kwargs(request, 0) | structured_kwargs(request.json_schema, sp)
    params = sp.SamplingParams(**kwargs)
    assert params.n == 3 and params.max_tokens == 1024 and params.stop == ["END"] and params.logprobs == 0
    constraint = getattr(params, "structured_outputs", None) or getattr(params, "guided_decoding", None)
    assert constraint is not None and constraint.json == {"type": "object"}
