"""``TrainConfig``: every setting of ``seapo train``, with the SeaPO paper's defaults.

Values come, in increasing priority, from the defaults below, a YAML file (``--config``,
:meth:`TrainConfig.load`) and CLI options. ``None`` on an ``auto`` field means "choose from the
model size, the hardware and the free memory"; what was chosen is written to ``settings.json``
and printed. A bad value raises :class:`~seapo.errors.ConfigError` naming the field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from seapo.config import SeapoConfig
from seapo.errors import ConfigError
from seapo.models.loading import DtypeName


class TrainConfig(SeapoConfig):
    """Settings of a preference-training run (the paper's defaults: LoRA r=8/alpha=16, lr 5e-6,
    3 epochs, beta 0.1, cosine schedule without warm-up, effective batch 16)."""

    model: str = Field("embedded", description="Policy model: 'embedded', a HF folder, a .gguf file or a Hub id "
                                               "(resolved by seapo.models.resolve_model).")
    algo: Literal["kto", "dpo", "ipo", "simpo", "orpo"] = Field(
        "kto", description="Preference loss: kto (chosen = desirable, rejected = undesirable), dpo (sigmoid), "
                           "ipo, simpo (TRL CPOTrainer, loss_type=simpo, no BC term) or orpo.")
    output_dir: str = Field("seapo-train", description="Run folder: adapter/, merged/, checkpoints/, logs, "
                                                       "heldout.json, settings.json.")
    pairing: Literal["mixed", "all"] = Field(
        "mixed", description="mixed: each positive is paired with one of its negatives drawn at random (seeded); "
                             "all: every negative is used.")
    heldout_fraction: float = Field(0.1, ge=0.0, lt=1.0,
                                    description="Fraction of records (split by record_id, seeded) kept out of "
                                                "training to measure preference accuracy before/after.")
    heldout_batch_size: int = Field(8, ge=1, description="Batch size of the held-out log-likelihood scoring.")
    # LoRA
    lora: bool = Field(True, description="Train a LoRA adapter (false: full fine-tuning).")
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    lora_target_modules: str = Field("all-linear", description="Modules that get adapters: 'all-linear' or a "
                                                               "comma-separated list of module names.")
    # Optimisation
    learning_rate: float = Field(5e-6, gt=0, le=1.0,
                                 description="Peak learning rate (AdamW); above 1 every update overshoots.")
    epochs: float = Field(3.0, gt=0, description="Training epochs.")
    max_steps: int = Field(-1, ge=-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    beta: float = Field(0.1, gt=0, description="Loss temperature: KL strength for kto/dpo, tau for ipo, "
                                               "reward scale for simpo, lambda for orpo.")
    lr_scheduler: str = Field("cosine", description="Learning-rate schedule (transformers name).")
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction of steps of linear warm-up.")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0,
                                description="AdamW weight decay (decoupled: a fraction of the learning rate).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    batch_size: int = Field(16, ge=1, description="Effective batch (per-device batch x gradient accumulation "
                                                  "x processes), in training examples (pairs; KTO rows for kto).")
    per_device_batch_size: int | None = Field(None, ge=1, description="Micro-batch per process (auto: from model "
                                                                      "size and free memory).")
    max_length: int = Field(1024, ge=16, description="Maximum tokens of prompt + response; longer ones are "
                                                     "truncated at the end.")
    seed: int = Field(42, description="Seed of the split, the pairing, the data order and the adapter init.")
    desirable_weight: float = Field(1.0, gt=0, description="KTO weight of desirable (chosen) examples.")
    undesirable_weight: float = Field(1.0, gt=0, description="KTO weight of undesirable (rejected) examples.")
    simpo_gamma: float = Field(0.5, description="SimPO target reward margin.")
    # Speed / hardware
    dtype: DtypeName = Field(
        "auto", description="Compute dtype: auto (bf16 on GPUs that have it and on CPUs with AMX/AVX512-BF16, else "
                            "fp32), bf16, fp16 or fp32.")
    gradient_checkpointing: bool | None = Field(None, description="Recompute activations in backward "
                                                                  "(auto: only when they would not fit in memory).")
    precompute_ref_log_probs: bool = Field(True, description="Compute the reference model's log-probabilities "
                                                             "once before training (kto/dpo/ipo) instead of "
                                                             "every step.")
    group_by_length: bool = Field(True, description="Order batches so that examples of similar length share a "
                                                    "batch (less padding); batch order is still shuffled.")
    # Checkpoints, logging, output
    logging_steps: int = Field(1, ge=1, description="Optimizer steps between two log lines.")
    save_steps: int | None = Field(None, ge=1, description="Optimizer steps between checkpoints (default: one "
                                                           "per epoch).")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept in output_dir/checkpoints.")
    resume: bool = Field(False, description="Resume from the last checkpoint-* in output_dir/checkpoints.")
    merge: bool = Field(True, description="Also write merged/ (adapter folded into the base weights).")
    trust_remote_code: bool = Field(False, description="Allow model code from the model folder/Hub.")

    @model_validator(mode="after")
    def _kto_batch(self) -> TrainConfig:
        # KTO's KL estimate pairs each example with another completion of the same micro-batch
        # (TRL's KTOTrainer refuses a micro-batch of 1); auto always picks at least 2.
        if self.algo == "kto" and self.per_device_batch_size is not None and self.per_device_batch_size < 2:
            raise ConfigError(f"kto needs per_device_batch_size >= 2 (its KL estimate pairs examples within a "
                              f"micro-batch), got {self.per_device_batch_size}", field="per_device_batch_size",
                              loc=("per_device_batch_size",))
        return self


TRAIN_OUTPUTS = ("result.json", "settings.json", "heldout.json", "train_log.jsonl", "train_log.png", "adapter",
                 "merged")
"""What ``seapo train`` publishes as its output set (checkpoints/ is resume state, not a result)."""
