"""Pick the speed-relevant settings from the model size, the hardware and the free memory.

The rules, each recorded with its reason in ``settings.json``:

* dtype: bf16 on GPUs that support it and on CPUs with native bf16 (AMX / AVX512-BF16: bf16
  matmuls ~3x faster than fp32), fp32 elsewhere (emulated bf16 is slower than fp32). On GPU with
  LoRA the frozen base weights are *stored* in that dtype; on CPU they stay fp32 under bf16
  autocast (bf16-stored weights get re-packed by oneDNN for every new sequence shape, which cost
  more than the casts in our measurements); full fine-tuning keeps fp32 master weights.
* gradient checkpointing costs one extra forward per step, so it is off unless the estimated
  activations of a micro-batch would not fit in about half the free memory.
* per-device batch: on CPU the smallest (1 pair; 2 rows for KTO, 4 rows = 2 pairs for KTO with the
  shared prefix, which needs a pair's rows in one micro-batch), since bigger micro-batches only
  add padding there; on GPU the largest
  power of two up to the effective batch that fits. Gradient accumulation fills the rest of
  the effective batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from seapo.errors import ConfigError
from seapo.models.loading import pick_dtype
from seapo.train.config import REFERENCE_ALGOS, TrainConfig

GIB = 1024**3


@dataclass
class ModelShape:
    params: int
    layers: int
    hidden: int
    heads: int
    vocab: int

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        """The shape read from a model config, with the parameter count estimated from it: the model
        itself is loaded only after the TrainingArguments (DeepSpeed ZeRO-3 must see those first)."""
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        hidden = getattr(text, "hidden_size", 1024)
        layers = getattr(text, "num_hidden_layers", 24)
        vocab = getattr(text, "vocab_size", 32000)
        inter = getattr(text, "intermediate_size", 4 * hidden)
        per_layer = 4 * hidden * hidden + 3 * hidden * inter  # attention + gated MLP
        embeddings = vocab * hidden * (1 if getattr(text, "tie_word_embeddings", False) else 2)
        return cls(layers * per_layer + embeddings, layers, hidden,
                   getattr(text, "num_attention_heads", max(1, hidden // 64)), vocab)


@dataclass
class ChosenSettings:
    device: str
    world_size: int
    dtype: str
    """Compute dtype (``bfloat16``, ``float16`` or ``float32``)."""
    base_weights_dtype: str
    mixed_precision: str
    """``bf16``, ``fp16`` or ``no``: the trainer's autocast."""
    gradient_checkpointing: bool
    per_device_batch_size: int
    gradient_accumulation_steps: int
    effective_batch_size: int
    precompute_ref_log_probs: bool
    group_by_length: bool
    free_memory_gib: float
    estimated_memory_gib: float
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def free_memory_bytes(device: str, world_size: int) -> int:
    """Free memory one process may use: the GPU's free memory, or MemAvailable shared by the processes."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // max(1, world_size)
    except OSError:
        pass
    return 8 * GIB


def estimate_memory(shape: ModelShape, cfg: TrainConfig, batch: int, checkpointing: bool,
                    weight_bytes: int, act_bytes: int) -> int:
    """Rough peak memory of one process (bytes): weights, optimizer state, activations, logits."""
    if cfg.lora:
        trainable = shape.layers * 7 * cfg.lora_r * 2 * shape.hidden  # all-linear adapters, roughly
        static = shape.params * weight_bytes + trainable * 16
    else:
        static = shape.params * (4 + 4 + 8)  # fp32 weights + grads + Adam moments
    seqs = 2 * batch  # chosen + rejected (pairwise) or completion + KL sequence (kto)
    tokens = seqs * cfg.max_length
    per_layer = 34 * shape.hidden * act_bytes // 2 * tokens  # Korthikanti et al., without attention scores
    scores = seqs * shape.heads * cfg.max_length**2 * 4  # math SDPA on CPU materialises them
    layers_kept = 1 if checkpointing else shape.layers
    acts = per_layer * layers_kept + scores + (shape.hidden * act_bytes * tokens * shape.layers if checkpointing
                                               else 0)
    fused_head = cfg.algo in REFERENCE_ALGOS  # TRL's fused LM head never builds full logits
    logits = 0 if fused_head else tokens * shape.vocab * 4 * 3
    return int(static + acts + logits)


def choose_settings(cfg: TrainConfig, shape: ModelShape, device: str, world_size: int,
                    free_bytes: int | None = None) -> ChosenSettings:
    import torch

    reasons: list[str] = []
    is_gpu = device.startswith("cuda")
    dtype = pick_dtype(cfg.dtype, device)
    dtype_name = str(dtype).removeprefix("torch.")
    if cfg.dtype == "auto":
        if is_gpu:
            reasons.append(f"dtype {dtype_name}: GPU {'supports' if dtype == torch.bfloat16 else 'lacks'} bf16")
        elif dtype == torch.bfloat16:
            reasons.append("dtype bfloat16: this CPU multiplies bf16 natively (AMX/AVX512-BF16), ~3x fp32")
        else:
            reasons.append("dtype float32: this CPU has no native bf16 (emulated bf16 would be slower)")
    mixed = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "no")
    if not is_gpu and dtype == torch.float16:
        raise ConfigError("fp16 training is not supported on CPU: use bf16 or fp32", field="dtype", loc=("dtype",))
    # GPU + LoRA: store the frozen base in bf16/fp16 (half the memory, no per-step casts). CPU: keep
    # fp32 weights under bf16 autocast -- measured here, bf16-stored weights make oneDNN re-pack
    # them for every new sequence shape (first pass per shape several times slower), and
    # length-grouped batches bring many shapes.
    base_dtype = dtype_name if (cfg.lora and is_gpu) else "float32"
    if base_dtype != "float32":
        reasons.append(f"LoRA: frozen base weights stored in {dtype_name} (no per-step casts), adapters in fp32")
    elif dtype != torch.float32:
        why = ("CPU: bf16-stored weights are re-packed per new sequence shape" if cfg.lora
               else "full fine-tuning: fp32 master weights")
        reasons.append(f"weights fp32 with {dtype_name} autocast ({why})")
    weight_bytes = 2 if base_dtype != "float32" else 4
    act_bytes = 2 if dtype != torch.float32 else 4
    free = free_bytes if free_bytes is not None else free_memory_bytes(device, world_size)
    budget = int(free * 0.5)  # leave room: other processes, allocator fragmentation, data

    per_device_max = max(1, cfg.batch_size // world_size)
    min_batch = 2 if cfg.algo == "kto" else 1  # KTO's KL estimate needs >= 2 examples per micro-batch
    if cfg.per_device_batch_size is not None:
        candidates = [cfg.per_device_batch_size]
    elif is_gpu:
        candidates = [b for b in (16, 8, 4, 2, 1) if min_batch <= b <= per_device_max] or [min_batch]
    elif cfg.algo == "kto" and cfg.shared_prefix and per_device_max >= 4:
        # CPU, KTO with the shared prefix: 4 rows = 2 pairs, the smallest micro-batch that holds a
        # pair's two rows (packed into one) while KTO's KL estimate still pairs each prompt with
        # another prompt's completion (seapo.train.data.ordered_kto_rows).
        candidates = [4]
    else:
        # CPU: a micro-batch of one pair (two sequences) already keeps the matmuls busy; every extra
        # example only adds padding, so take the smallest (KTO: 2, for its KL estimate).
        candidates = [min_batch]

    ckpt_options = [cfg.gradient_checkpointing] if cfg.gradient_checkpointing is not None else [False, True]
    chosen = None
    for ckpt in ckpt_options:
        for b in candidates:
            need = estimate_memory(shape, cfg, b, ckpt, weight_bytes, act_bytes)
            if need <= budget:
                chosen = (b, ckpt, need)
                break
        if chosen:
            break
    if chosen is None:  # nothing fits by the estimate: the smallest, most frugal setting, and say so
        b, ckpt = candidates[-1], ckpt_options[-1]
        chosen = (b, ckpt, estimate_memory(shape, cfg, b, ckpt, weight_bytes, act_bytes))
        reasons.append("memory estimate exceeds half the free memory even with the smallest setting")
    batch, ckpt, need = chosen
    if cfg.gradient_checkpointing is None:
        reasons.append(f"gradient checkpointing {'on' if ckpt else 'off'}: estimated {need / GIB:.1f} GiB vs "
                       f"{free / GIB:.1f} GiB free ({'does not fit' if ckpt else 'fits'} without)")
    if cfg.per_device_batch_size is None:
        why = ("GPU: largest that fits" if is_gpu else
               "CPU, kto with the shared prefix: 2 pairs, a pair's rows packed together" if batch == 4 and
               cfg.algo == "kto" else "CPU: smallest; bigger only pads")
        reasons.append(f"per-device batch {batch} ({why})")
    accum = max(1, round(cfg.batch_size / (batch * world_size)))
    effective = batch * accum * world_size
    if effective != cfg.batch_size:
        reasons.append(f"effective batch {effective} (requested {cfg.batch_size} is not a multiple of "
                       f"{batch} x {world_size} processes)")
    precompute = cfg.precompute_ref_log_probs and cfg.algo in REFERENCE_ALGOS
    if cfg.algo in ("simpo", "orpo"):
        reasons.append(f"{cfg.algo} is reference-free: no reference log-probabilities")
    elif precompute:
        reasons.append("reference log-probabilities computed once before training, not every step")
    return ChosenSettings(
        device=device, world_size=world_size, dtype=dtype_name, base_weights_dtype=base_dtype,
        mixed_precision=mixed, gradient_checkpointing=ckpt, per_device_batch_size=batch,
        gradient_accumulation_steps=accum, effective_batch_size=effective, precompute_ref_log_probs=precompute,
        group_by_length=cfg.group_by_length, free_memory_gib=round(free / GIB, 2),
        estimated_memory_gib=round(need / GIB, 2), reasons=reasons)
