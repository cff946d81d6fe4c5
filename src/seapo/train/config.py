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

DPO_LOSSES = {"dpo": "sigmoid", "ipo": "ipo", "apo_zero": "apo_zero", "apo_down": "apo_down"}
"""The algorithms TRL's DPOTrainer runs, and the ``loss_type`` each is there."""
REFERENCE_ALGOS = ("kto", *DPO_LOSSES)
"""The algorithms with a reference model (its log-probabilities can be precomputed)."""


class TrainConfig(SeapoConfig):
    """Settings of a preference-training run (the paper's defaults: LoRA r=8/alpha=16, lr 5e-6,
    3 epochs, beta 0.1, cosine schedule without warm-up, effective batch 16)."""

    model: str = Field("embedded", description="Policy model: 'embedded', a HF folder, a .gguf file or a Hub id "
                                               "(resolved by seapo.models.resolve_model).")
    algo: Literal["kto", "dpo", "ipo", "apo_zero", "apo_down", "simpo", "orpo"] = Field(
        "kto", description="Preference loss: kto (chosen = desirable, rejected = undesirable), dpo (sigmoid), "
                           "ipo, apo_zero / apo_down (Anchored Preference Optimization, for minimal-contrast pairs: "
                           "apo_zero pushes the positive up and the negative down against the reference, apo_down "
                           "pushes both down, the negative more -- for when the positive is no better than what the "
                           "model already writes), simpo (TRL CPOTrainer, loss_type=simpo, no BC term) or orpo.")
    focus: Literal["full", "divergent"] = Field(
        "full", description="full: the loss covers each whole response; divergent: the response prefix a pair's two "
                            "responses share is moved into the prompt (Step-DPO's construction), so the loss covers "
                            "only the text from the first differing token on (kto: both rows of a pair get the same "
                            "extended prompt, so shared text is neither pushed up nor down).")
    ld_alpha: float | None = Field(
        None, ge=0.0, le=1.0, description="LD-DPO length desensitisation (dpo/ipo/apo_*): the log-probabilities of "
                                          "response tokens beyond the shorter response's length are weighted by this "
                                          "(1: plain loss, 0: those tokens ignored); None: off.")
    output_dir: str = Field("seapo-train", description="Run folder: adapter/, merged/, checkpoints/, logs, "
                                                       "heldout.json, settings.json.")
    pairing: Literal["mixed", "all"] = Field(
        "mixed", description="mixed: each positive is paired with one of its negatives drawn at random (seeded); "
                             "all: every negative is used.")
    heldout_fraction: float = Field(0.1, ge=0.0, lt=1.0,
                                    description="Fraction of records (split by record_id, seeded) kept out of "
                                                "training to measure preference accuracy before/after.")
    heldout_pairs: list[str] = Field(
        default_factory=list, description="Pairs files (any layout seapo train reads) scored as held-out sets "
                                          "before and after training, beside the split heldout_fraction carves "
                                          "(0: only these). Their records are removed from training (by "
                                          "record_id), so a held-out prompt is never trained on. Lets several "
                                          "runs score the same held-out pairs, e.g. a data set's own chosen vs "
                                          "rejected (error type 'source') beside injected negatives.")
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
                                                             "once before training (kto, dpo, ipo, apo_*) instead of "
                                                             "every step.")
    shared_prefix: bool = Field(
        True, description="Run the tokens two rows of a batch share (a pair's prompt + common response prefix) once: "
                          "both continuations in one packed row with a block attention mask; exact. dpo/ipo/apo_*, "
                          "simpo, orpo: each pair's chosen and rejected rows; kto: a pair's two rows and the two KL "
                          "rows of each prompt, when a micro-batch holds >= 4 rows (on CPU kto then takes 4 rows = "
                          "2 pairs per micro-batch); the reference precomputation too. With TRL's fused LM head (dpo "
                          "family, kto) the head then scores only completion positions on CPU as well. On where the "
                          "attention honours a custom mask (sdpa, eager). false: TRL's unshared forward.")
    group_by_length: bool = Field(True, description="Order batches so that examples of similar length share a "
                                                    "batch (less padding); batch order is still shuffled.")
    data_cache_dir: str | None = Field(
        None, description="Folder for the tokenized training rows and TRL's reference log-prob cache (default: "
                          "OUT/data). Runs that train the same rows from the same model share one: the second "
                          "skips the reference pass (seapo tune points share their tune's). Results do not depend "
                          "on it.")
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

    @model_validator(mode="after")
    def _focus_needs_a_tested_trainer(self) -> TrainConfig:
        # CPOTrainer/ORPOTrainer tokenize prompt and answer their own way; the divergent cut is
        # verified against the DPO and KTO trainers' tokenization only.
        if self.focus == "divergent" and self.algo in ("simpo", "orpo"):
            raise ConfigError(f"focus: divergent is supported for kto, {', '.join(DPO_LOSSES)}, not for {self.algo}",
                              field="focus", loc=("focus",))
        return self

    @model_validator(mode="after")
    def _ld_alpha_needs_dpo(self) -> TrainConfig:
        if self.ld_alpha is not None and self.algo not in DPO_LOSSES:
            raise ConfigError(f"ld_alpha applies to {', '.join(DPO_LOSSES)} (TRL's DPOTrainer), not to {self.algo}",
                              field="ld_alpha", loc=("ld_alpha",))
        return self


TRAIN_OUTPUTS = ("result.json", "settings.json", "heldout.json", "train_log.jsonl", "train_log.png", "adapter",
                 "merged")
"""What ``seapo train`` publishes as its output set (checkpoints/ is resume state, not a result)."""
