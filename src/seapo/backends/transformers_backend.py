"""Local generation with Hugging Face ``transformers``: CPU or GPU, batched, left-padded."""

from __future__ import annotations

from collections.abc import Sequence
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
from seapo.models.loading import DtypeName, eos_token_ids


class TransformersBackendConfig(BackendConfig):
    """Settings of the transformers backend."""

    name: Literal["transformers"] = Field("transformers", description=BackendConfig.model_fields["name"].description,
                                          json_schema_extra={"cli_name": "backend"})
    dtype: DtypeName = Field(
        "auto", description="auto (bf16 on GPUs and on CPUs with native bf16, else fp32), bf16, fp16 or fp32 "
                            "(torch's names bfloat16, float16, float32 are read as these).")
    device: str | None = Field(None, description="cuda, cuda:1 or cpu (default: CUDA when present).")
    trust_remote_code: bool = Field(False, description="Run code shipped with a Hub model. Off unless you trust "
                                                       "the model's authors.")


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop sequence, and whether one was found."""
    cut = len(text)
    for s in stop:
        k = text.find(s)
        if k != -1:
            cut = min(cut, k)
    return text[:cut], cut < len(text)


@register_backend("transformers")
class TransformersBackend(GenerationBackend):
    """Batched greedy or sampled generation with ``model.generate``.

    Requests with the same decoding settings share batches; prompts are sorted by length first,
    so a batch pads little, and results come back in input order. ``n`` samples of one prompt
    are rows of the same batch. A request that cannot be encoded, or whose batch fails and
    then fails again on its own, comes back as an error; the rest of the batch is kept.
    """

    config_class = TransformersBackendConfig
    config: TransformersBackendConfig

    def _load(self) -> None:
        from seapo.models import load_causal_lm, load_tokenizer, resolve_model

        cfg = self.config
        self.resolved = resolve_model(cfg.model)
        self.tokenizer = load_tokenizer(self.resolved, trust_remote_code=cfg.trust_remote_code)
        self.model = load_causal_lm(self.resolved, dtype=cfg.dtype, device=cfg.device,
                                    trust_remote_code=cfg.trust_remote_code)
        self._eos = eos_token_ids(self.model, self.tokenizer)
        ids = self.tokenizer("x")["input_ids"]
        bos = self.tokenizer.bos_token_id
        # Raw text gets BOS only where the tokenizer adds one to plain text (Llama-2 style).
        self.bos: list[int] = [bos] if bos is not None and ids and ids[0] == bos else []

    def _close(self) -> None:
        del self.model, self.tokenizer

    def fingerprint(self) -> str:
        """The model's content (not its name) and the dtype it runs in: no model is loaded."""
        from seapo.fingerprint import stable_hash
        from seapo.models.loading import weights_identity

        cfg = self.config
        return f"transformers:{stable_hash(weights_identity(cfg.model, cfg.dtype, cfg.device))}"

    @property
    def dtype_name(self) -> str:
        self.load()
        return str(self.model.dtype).removeprefix("torch.")

    def encode(self, request: GenerationRequest) -> list[int]:
        """Token ids of a request's input: the chat with the generation prompt, or the raw text."""
        self.load()
        if request.prompt is not None:
            return self.bos + self.tokenizer(request.prompt, add_special_tokens=False)["input_ids"]
        conversation = list(request.messages or [])
        if self.tokenizer.chat_template:
            return list(self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True,
                                                           return_dict=True)["input_ids"])
        # Base models without a chat template: a plain transcript.
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in conversation) + "Assistant:"
        return self.tokenizer(text)["input_ids"]

    def _generate(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        encoded: dict[int, list[int]] = {}
        limit = getattr(self.model.config, "max_position_embeddings", None)
        for i, request in enumerate(requests):
            try:
                ids = self.encode(request)
            except Exception as exc:  # noqa: BLE001 - one bad input must not sink the batch
                results[i] = Generation.failed(f"cannot encode the input: {type(exc).__name__}: {exc}")
                continue
            if limit and len(ids) + request.max_new_tokens > limit:
                results[i] = Generation.failed(f"input of {len(ids)} tokens + max_new_tokens "
                                               f"{request.max_new_tokens} exceeds the model's {limit} positions")
            else:
                encoded[i] = ids
        if progress and len(encoded) < len(requests):
            progress(len(requests) - len(encoded))
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i in encoded:
            groups.setdefault(requests[i].decoding, []).append(i)
        for members in groups.values():
            request = requests[members[0]]
            order = sorted(members, key=lambda i: len(encoded[i]), reverse=True)
            per_batch = max(1, self.config.batch_size // request.n)
            for start in range(0, len(order), per_batch):
                batch = order[start:start + per_batch]
                for i, generation in zip(batch, self._batch_or_singles([encoded[i] for i in batch], request, start),
                                         strict=True):
                    results[i] = generation
                if progress:
                    progress(len(batch))
        return [r if r is not None else Generation.failed("not generated") for r in results]

    def _batch_or_singles(self, rows: list[list[int]], request: GenerationRequest, start: int) -> list[Generation]:
        """The batch at once; if that fails, each prompt alone, so only a bad one is lost."""
        try:
            return self._run_batch(rows, request, start)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory, a kernel error on one input
            if len(rows) == 1:
                return [Generation.failed(f"generation failed: {type(exc).__name__}: {exc}")]
        out = []
        for k, row in enumerate(rows):
            try:
                out.extend(self._run_batch([row], request, start + k))
            except Exception as exc:  # noqa: BLE001
                out.append(Generation.failed(f"generation failed: {type(exc).__name__}: {exc}"))
        return out

    def _run_batch(self, prompts: list[list[int]], request: GenerationRequest, start: int) -> list[Generation]:
        import torch

        sampling = request.temperature > 0
        pad = self.tokenizer.pad_token_id
        outputs: list[list[Completion]] = [[] for _ in prompts]
        for first in range(0, request.n, self.config.batch_size):
            copies = min(request.n - first, self.config.batch_size)
            rows = [p for p in prompts for _ in range(copies)]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, tokens in enumerate(rows):  # left padding: every prompt ends at the same column
                ids[r, width - len(tokens):] = torch.tensor(tokens)
                mask[r, width - len(tokens):] = 1
            if sampling:
                torch.manual_seed(request.seed + start * 1000 + first)
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device),
                    max_new_tokens=request.max_new_tokens, do_sample=sampling,
                    temperature=request.temperature if sampling else None,
                    top_p=request.top_p if sampling else None, top_k=None,
                    eos_token_id=self._eos, pad_token_id=pad,
                    stop_strings=list(request.stop) or None, tokenizer=self.tokenizer if request.stop else None,
                    return_dict_in_generate=True, output_logits=request.logprobs,
                )
            sequences = out.sequences
            for r in range(len(rows)):
                new = sequences[r, width:].tolist()
                ended = next((k for k, t in enumerate(new) if t in self._eos), None)
                tokens = new if ended is None else new[:ended]
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                text, hit = cut_at_stop(text, request.stop)
                logprobs = None
                if request.logprobs:
                    steps = torch.stack([step[r] for step in out.logits[:len(tokens)]]) if tokens else None
                    logprobs = [] if steps is None else steps.float().log_softmax(-1).gather(
                        -1, torch.tensor(tokens, device=steps.device)[:, None]).squeeze(-1).tolist()
                outputs[r // copies].append(Completion(text, "stop" if hit or ended is not None else "length",
                                                       len(tokens), logprobs))
        return [Generation(c) for c in outputs]
