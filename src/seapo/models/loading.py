"""Load tokenizers and causal LMs from any resolved model, with sensible dtype choices."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator

from seapo.errors import ModelNotFoundError
from seapo.models.resolve import ACCEPTED_FORMS, ResolvedModel, resolve_model

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bf16 matrices natively (AMX or AVX512-BF16).

    On such CPUs a bf16 matmul runs about 3x faster than fp32; elsewhere bf16 is emulated
    and slower than fp32, so fp32 is the right choice.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


TORCH_DTYPE_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
"""seapo's short dtype names and torch's own, which are accepted as well (lm-eval users write those)."""


def short_dtype(name: Any) -> Any:
    """``bfloat16`` -> ``bf16`` (torch's names to seapo's); any other value is returned as it is."""
    return next((short for short, long in TORCH_DTYPE_NAMES.items() if long == name), name)


DtypeName = Annotated[Literal["auto", "bf16", "fp16", "fp32"], BeforeValidator(short_dtype)]
"""A config field naming a dtype: seapo's short names, torch's long ones read as the short."""


def pick_dtype(dtype: str = "auto", device: str | None = None) -> torch.dtype:
    """``auto`` -> bf16 on GPUs that support it and on CPUs with native bf16, else fp32."""
    import torch

    if dtype != "auto":
        try:
            return getattr(torch, TORCH_DTYPE_NAMES[short_dtype(dtype)])
        except KeyError:
            raise ValueError(f"unknown dtype '{dtype}': use auto, bf16, fp16 or fp32") from None
    device = device or default_device()
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def weights_identity(model: str, dtype: str = "auto", device: str | None = None) -> list[str]:
    """What a model's outputs depend on, without loading it: the content fingerprint of its files
    (not its name) and the dtype it runs in (``auto`` resolved for ``device``)."""
    from seapo.fingerprint import model_fingerprint

    return [model_fingerprint(resolve_model(model).path), str(pick_dtype(dtype, device)).removeprefix("torch.")]


def _as_resolved(model: str | ResolvedModel) -> ResolvedModel:
    return model if isinstance(model, ResolvedModel) else resolve_model(model)


def load_tokenizer(model: str | ResolvedModel, *, trust_remote_code: bool = False,
                   padding_side: str = "left") -> PreTrainedTokenizerBase:
    """Tokenizer with a pad token (falls back to EOS) and the requested padding side."""
    from transformers import AutoTokenizer

    resolved = _as_resolved(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load a tokenizer for '{resolved.spec}': {exc}. "
                                 f"Accepted: {ACCEPTED_FORMS}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_causal_lm(model: str | ResolvedModel, *, dtype: str = "auto", device: str | None = None,
                   trust_remote_code: bool = False) -> PreTrainedModel:
    """A causal LM in eval mode on ``device`` (default: CUDA if present, else CPU)."""
    from transformers import AutoModelForCausalLM

    resolved = _as_resolved(model)
    device = device or default_device()
    try:
        lm = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=pick_dtype(dtype, device),
                                                  trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load model '{resolved.spec}': {exc}. Accepted: {ACCEPTED_FORMS}") \
            from exc
    return lm.to(device).eval()


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every token that ends a generation: the generation config's EOS ids plus the tokenizer's."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
