"""Local generation with Hugging Face ``transformers``: CPU or GPU, batched, left-padded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from seapo.backends.base import (
    BackendConfig,
    Conversation,
    Generation,
    GenerationBackend,
    GenerationConfig,
    register_backend,
)
from seapo.models.loading import eos_token_ids


@dataclass
class TransformersBackendConfig(BackendConfig):
    """Settings of the transformers backend."""

    dtype: str = "auto"
    """auto (bf16 on GPUs and on CPUs with native bf16, else fp32), bf16, fp16 or fp32."""
    device: str | None = None
    """``cuda``, ``cuda:1``, ``cpu``; default: CUDA when present."""
    trust_remote_code: bool = False
    """Run code shipped with a Hub model. Off unless you trust the model's authors."""


@register_backend("transformers", TransformersBackendConfig)
class TransformersBackend(GenerationBackend):
    """Batched greedy or sampled generation with ``model.generate``.

    Prompts are sorted by length before batching, so each batch pads little; results come
    back in input order.
    """

    def __init__(self, config: TransformersBackendConfig) -> None:
        from seapo.models import load_causal_lm, load_tokenizer, resolve_model

        self.config = config
        self.resolved = resolve_model(config.model)
        self.tokenizer = load_tokenizer(self.resolved, trust_remote_code=config.trust_remote_code)
        self.model = load_causal_lm(self.resolved, dtype=config.dtype, device=config.device,
                                    trust_remote_code=config.trust_remote_code)
        self._fingerprint = f"transformers:{self.resolved.spec}:{self.model.dtype}".replace("torch.", "")

    def fingerprint(self) -> str:
        return self._fingerprint

    def encode(self, conversation: Conversation) -> list[int]:
        """Token ids of a conversation with the generation prompt appended."""
        if self.tokenizer.chat_template:
            ids = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True,
                                                     return_dict=True)["input_ids"]
            return list(ids)
        # Base models without a chat template: a plain transcript.
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in conversation) + "Assistant:"
        return self.tokenizer(text)["input_ids"]

    def generate(self, conversations: Sequence[Conversation], config: GenerationConfig,
                 progress: Callable[[int], None] | None = None) -> list[Generation]:
        import torch

        encoded = [self.encode(c) for c in conversations]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        results: list[Generation | None] = [None] * len(encoded)
        eos_ids = self._eos_ids()
        pad_id = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.config.batch_size):
            batch = order[start:start + self.config.batch_size]
            width = max(len(encoded[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # left padding: every prompt ends at the same column
                ids = encoded[i]
                input_ids[row, width - len(ids):] = torch.tensor(ids)
                attention[row, width - len(ids):] = 1
            sampling = config.temperature > 0
            if sampling:
                torch.manual_seed(config.seed)
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=input_ids.to(self.model.device),
                    attention_mask=attention.to(self.model.device),
                    max_new_tokens=config.max_new_tokens,
                    do_sample=sampling,
                    temperature=config.temperature if sampling else None,
                    top_p=config.top_p if sampling else None,
                    top_k=None,
                    eos_token_id=eos_ids,
                    pad_token_id=pad_id,
                )
            for row, i in enumerate(batch):
                new = output[row, width:].tolist()
                ended = next((k for k, t in enumerate(new) if t in eos_ids), None)
                tokens = new if ended is None else new[:ended]
                results[i] = Generation(
                    text=self.tokenizer.decode(tokens, skip_special_tokens=True).strip(),
                    finish_reason="length" if ended is None else "stop",
                    num_tokens=len(tokens),
                )
            if progress:
                progress(len(batch))
        return [r for r in results if r is not None]

    def _eos_ids(self) -> list[int]:
        return eos_token_ids(self.model, self.tokenizer)

    def close(self) -> None:
        del self.model
