"""In-process offline batching with vLLM (``vllm.LLM``) on one or more GPUs.

Install: ``pip install 'seapo[vllm]'`` (a CUDA machine; vLLM pins its own torch build). The
``vllm`` package is imported only when the backend loads, so configs naming it validate, and
fingerprints are computed, on machines without it.

* **Batching** is vLLM's own: every request of a :meth:`~GenerationBackend.generate` call goes to
  the engine at once (chat requests through ``LLM.chat``, raw-text ones through ``LLM.generate``)
  and vLLM's scheduler runs up to ``batch_size`` sequences at a time (its ``max_num_seqs``) with
  continuous batching and, with ``enable_prefix_caching``, shared prompt prefixes (few-shot
  primers, the ``n`` samples of one prompt) computed once.
* **Requests** map one to one onto ``SamplingParams`` (:func:`sampling_kwargs`): greedy at
  temperature 0, else temperature then top-p with a seed mixed from the config's and the
  request's (vLLM gives each seeded request its own generator, so a completion does not depend on
  what it was batched with), ``n``, stop sequences (the text is cut before them, as vLLM does by
  default), token log-probs (``logprobs=0``: the sampled token's only).
* **JSON schema** (the judge's verdicts): vLLM's structured outputs. vLLM 0.12 removed
  ``guided_decoding=GuidedDecodingParams(json=...)`` for ``structured_outputs=
  StructuredOutputsParams(json=...)``; whichever the installed vLLM has is used.
* **A bad request fails alone**: inputs longer than the engine's ``max_model_len`` (with
  ``max_new_tokens``) are refused before the call; if the engine still raises for a batch, each
  request is retried on its own so only the bad one is lost.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from seapo.backends.base import (
    BackendConfig,
    Completion,
    Generation,
    GenerationBackend,
    GenerationRequest,
    Progress,
    register_backend,
)
from seapo.backends.transformers_backend import TransformersBackend, raw_text_bos
from seapo.errors import InputError
from seapo.models.loading import TORCH_DTYPE_NAMES, DtypeName


class VLLMBackendConfig(BackendConfig):
    """Settings of the ``vllm`` backend (vLLM's offline ``LLM`` engine, in process, on GPUs)."""

    name: Literal["vllm"] = Field("vllm", description=BackendConfig.model_fields["name"].description,
                                  json_schema_extra={"cli_name": "backend"})
    model: str = Field("embedded", min_length=1, description="'embedded', a Hugging Face model folder, a .gguf "
                       "file (dequantized first, as the transformers backend does) or a Hub id.")
    batch_size: int = Field(256, ge=1, description="Sequences the engine runs at once (vLLM's max_num_seqs; "
                            "n samples of a prompt count n). Every request of a call is queued at once.")
    dtype: DtypeName = Field("auto", description="Weights and activations: auto (the model config's dtype; "
                             "fp32 models run in fp16, vLLM's rule), bf16, fp16 or fp32.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split over (tensor parallelism; "
                                      "a divisor of the model's attention heads).")
    max_model_len: int | None = Field(None, ge=16, description="Longest prompt + completion in tokens; it sizes "
                                      "the KV cache. None: the model's own context length.")
    enable_prefix_caching: bool = Field(True, description="Reuse the KV cache of prompt prefixes shared between "
                                        "requests (few-shot primers, a record's n samples).")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Fraction of each GPU's memory vLLM may "
                                          "take for weights, activations and KV cache.")
    enforce_eager: bool = Field(False, description="Run without CUDA graphs: a faster start and less memory, "
                                "slower decoding.")
    seed: int = Field(0, ge=0, description="Base seed of sampled completions, mixed with each request's seed.")
    trust_remote_code: bool = Field(False, description="Run code shipped with a Hub model. Off unless you trust "
                                    "the model's authors.")


def engine_kwargs(config: VLLMBackendConfig, model_path: str) -> dict[str, Any]:
    """The keyword arguments of ``vllm.LLM`` for a config (the model already resolved to a path or Hub id)."""
    kwargs: dict[str, Any] = {
        "model": model_path, "tokenizer": model_path,
        "dtype": TORCH_DTYPE_NAMES.get(config.dtype, config.dtype),
        "tensor_parallel_size": config.tensor_parallel_size,
        "enable_prefix_caching": config.enable_prefix_caching,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "max_num_seqs": config.batch_size,
        "enforce_eager": config.enforce_eager,
        "seed": config.seed,
        "trust_remote_code": config.trust_remote_code,
    }
    if config.max_model_len is not None:
        kwargs["max_model_len"] = config.max_model_len
    return kwargs


def request_seed(base: int, request: GenerationRequest) -> int:
    """The seed of a sampled request: the config's and the request's, mixed (vLLM takes a 63-bit int)."""
    return (base * 1_000_003 + request.seed) % (2**63 - 1)


def sampling_kwargs(request: GenerationRequest, base_seed: int) -> dict[str, Any]:
    """The ``SamplingParams`` fields of a request, JSON schema aside (:func:`structured_kwargs`)."""
    # Greedy completions are all the same: one is asked for and copied (older vLLMs refuse n > 1 when greedy).
    kwargs: dict[str, Any] = {"n": request.n if request.temperature > 0 else 1, "max_tokens": request.max_new_tokens,
                              "temperature": request.temperature,
                              "top_p": request.top_p if request.temperature > 0 else 1.0}
    if request.temperature > 0:
        kwargs["seed"] = request_seed(base_seed, request)
    if request.stop:
        kwargs["stop"] = list(request.stop)
    if request.logprobs:
        kwargs["logprobs"] = 0  # the sampled token's log-prob only
    return kwargs


def structured_kwargs(schema_text: str, sampling_module: Any) -> dict[str, Any]:
    """The ``SamplingParams`` field constraining a completion to a JSON schema, in the installed vLLM's
    spelling: ``structured_outputs`` (vLLM >= 0.10.2, the only one from 0.12) or ``guided_decoding``."""
    schema = json.loads(schema_text)  # a bad schema fails its request here, not the batch in the engine
    if hasattr(sampling_module, "StructuredOutputsParams"):
        return {"structured_outputs": sampling_module.StructuredOutputsParams(json=schema)}
    if hasattr(sampling_module, "GuidedDecodingParams"):
        return {"guided_decoding": sampling_module.GuidedDecodingParams(json=schema)}
    raise ValueError("this vLLM has neither StructuredOutputsParams nor GuidedDecodingParams (vLLM < 0.6?)")


def _token_logprobs(output: Any) -> list[float] | None:
    """Per generated token, its log-prob, from vLLM's per-step ``{token_id: Logprob}`` maps."""
    steps = getattr(output, "logprobs", None)
    if steps is None:
        return None
    return [float(step[token].logprob) for token, step in zip(output.token_ids, steps, strict=False)]


@register_backend("vllm")
class VLLMBackend(GenerationBackend):
    """vLLM's offline engine behind the backend protocol; see the module docstring."""

    config_class = VLLMBackendConfig
    config: VLLMBackendConfig
    throughput_fields = frozenset({"batch_size", "tensor_parallel_size", "max_model_len", "enable_prefix_caching",
                                   "gpu_memory_utilization", "enforce_eager"})
    supports_json_schema = True

    # ------------------------------------------------------------------ lifecycle
    def _load(self) -> None:
        try:
            import vllm
            import vllm.sampling_params
        except ImportError as exc:
            raise InputError(f"the vllm backend needs vLLM on a CUDA machine: pip install 'seapo[vllm]' "
                             f"({type(exc).__name__}: {exc})", field="backend.name") from None
        from seapo.models import resolve_model

        cfg = self.config
        self.resolved = resolve_model(cfg.model)
        try:
            self.llm = vllm.LLM(**engine_kwargs(cfg, self.resolved.path))
        except Exception as exc:  # noqa: BLE001 - vLLM raises many kinds; say which setting to look at
            raise InputError(f"vLLM could not start on '{cfg.model}': {type(exc).__name__}: {exc} (a CUDA GPU, "
                             "tensor_parallel_size <= GPUs, gpu_memory_utilization and max_model_len that fit)",
                             field="backend") from exc
        self._sampling = vllm.sampling_params
        self.tokenizer = self.llm.get_tokenizer()
        self.bos = raw_text_bos(self.tokenizer)
        model_config = getattr(self.llm.llm_engine, "model_config", None)  # where vLLM 0.8 to 0.2x keep it
        self.max_model_len = int(getattr(model_config, "max_model_len", None) or cfg.max_model_len
                                 or self.tokenizer.model_max_length)

    def _close(self) -> None:
        import gc

        del self.llm, self.tokenizer
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - vLLM brings torch
            pass

    def fingerprint(self) -> str:
        """The model's content (not its name), the dtype as configured and the sampling seed: no model loaded."""
        from seapo.fingerprint import model_fingerprint, stable_hash
        from seapo.models import resolve_model

        cfg = self.config
        return f"vllm:{stable_hash([model_fingerprint(resolve_model(cfg.model).path), cfg.dtype, cfg.seed])}"

    def encode(self, request: GenerationRequest) -> list[int]:
        """Token ids of a request's input, built as the transformers backend builds them (the chat template
        ``LLM.chat`` applies too; raw text with BOS where the tokenizer adds one): for the length check."""
        self.load()
        return TransformersBackend.encode(self, request)  # type: ignore[arg-type] - same tokenizer, bos, load

    # ------------------------------------------------------------------ generation
    def _generate(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        chats: list[tuple[int, Any]] = []
        raws: list[tuple[int, Any, list[int]]] = []
        for i, request in enumerate(requests):
            try:
                ids = self.encode(request)
                if not ids:
                    raise ValueError("the input is empty")
                if len(ids) + request.max_new_tokens > self.max_model_len:
                    raise ValueError(f"input of {len(ids)} tokens + max_new_tokens {request.max_new_tokens} exceeds "
                                     f"the engine's max_model_len of {self.max_model_len} positions")
                params = self._params(request)
            except Exception as exc:  # noqa: BLE001 - one bad input must not sink the batch
                results[i] = Generation.failed(f"cannot generate for this input: {type(exc).__name__}: {exc}")
                continue
            if request.messages is not None:
                chats.append((i, params))
            else:
                raws.append((i, params, ids))
        if progress and any(r is not None for r in results):
            progress(sum(r is not None for r in results))
        if chats:
            self._run([i for i, _ in chats], [list(requests[i].messages or []) for i, _ in chats],
                      [p for _, p in chats], self.llm.chat, requests, results, progress)
        if raws:
            self._run([i for i, _, _ in raws], [{"prompt_token_ids": ids} for _, _, ids in raws],
                      [p for _, p, _ in raws], self.llm.generate, requests, results, progress)
        return [r if r is not None else Generation.failed("not generated") for r in results]

    def _params(self, request: GenerationRequest) -> Any:
        kwargs = sampling_kwargs(request, self.config.seed)
        if request.json_schema is not None:
            kwargs |= structured_kwargs(request.json_schema, self._sampling)
        return self._sampling.SamplingParams(**kwargs)

    def _run(self, index: list[int], inputs: list[Any], params: list[Any], call: Any,
             requests: list[GenerationRequest], results: list[Generation | None], progress: Progress | None) -> None:
        """One engine call for all ``inputs``; if it raises, one call per input, so only a bad one fails."""
        try:
            outputs = call(inputs, sampling_params=params, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001 - e.g. a schema the grammar compiler refuses
            if len(inputs) == 1:
                results[index[0]] = Generation.failed(f"vLLM failed: {type(exc).__name__}: {exc}")
                if progress:
                    progress(1)
                return
            for k in range(len(inputs)):
                self._run(index[k:k + 1], inputs[k:k + 1], params[k:k + 1], call, requests, results, progress)
            return
        for i, output in zip(index, outputs, strict=True):
            results[i] = _generation(output, requests[i].n)
        if progress:
            progress(len(index))


def _generation(output: Any, n: int) -> Generation:
    """The request's ``n`` completions from vLLM's output (one greedy completion stands for all ``n``)."""
    completions = []
    for choice in sorted(output.outputs, key=lambda c: c.index):
        if choice.finish_reason not in ("stop", "length"):
            return Generation.failed(f"vLLM ended a completion with finish_reason={choice.finish_reason!r}")
        completions.append(Completion(choice.text, choice.finish_reason, len(choice.token_ids),
                                      _token_logprobs(choice)))
    if len(completions) == 1 and n > 1:
        completions += [Completion(c.text, c.finish_reason, c.num_tokens, c.token_logprobs)
                        for c in completions * (n - 1)]
    return Generation(completions)


__all__ = ["VLLMBackend", "VLLMBackendConfig", "engine_kwargs", "sampling_kwargs", "structured_kwargs"]
