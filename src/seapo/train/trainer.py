"""``seapo train``: preference training on injected pairs through TRL's trainers.

``train(pairs_path, config)`` reads the pairs, splits off held-out records, measures held-out
preference accuracy, trains (KTO/DPO/IPO via ``KTOTrainer``/``DPOTrainer``, SimPO via
``CPOTrainer``, ORPO via ``ORPOTrainer``), measures again and writes::

    OUT/adapter/          LoRA adapter (absent with lora: false)
    OUT/merged/           full model + tokenizer, loads with AutoModelForCausalLM.from_pretrained
    OUT/checkpoints/      trainer checkpoints (resume: true picks the last one)
    OUT/train_log.jsonl   one line per logging step: loss, reward margins/accuracy, lr, epoch
    OUT/train_log.png     plot of it
    OUT/heldout.json      held-out accuracy before/after, per error type
    OUT/settings.json     the config and the settings chosen for this hardware, with reasons
    OUT/result.json       the TrainResult

The same command runs on CPU and GPU and under ``accelerate launch`` (several processes or
DeepSpeed): the trainer reads the launcher's environment.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seapo.io import write_json
from seapo.train.config import TrainConfig
from seapo.train.data import (
    Pair,
    PreferenceGroup,
    kto_row,
    load_preferences,
    select_pairs,
    split_heldout,
    unpaired_kto_rows,
)
from seapo.train.settings import ChosenSettings, ModelShape, choose_settings

LOG_NAME = "train_log.jsonl"
PLOT_NAME = "train_log.png"


@dataclass
class TrainResult:
    """What a run produced (paths are absolute) and what it measured."""

    output_dir: str
    adapter_dir: str | None
    merged_dir: str | None
    log_path: str
    plot_path: str | None
    heldout_path: str | None
    heldout_before: dict[str, Any] | None
    heldout_after: dict[str, Any] | None
    settings: dict[str, Any]
    train_pairs: int
    train_examples: int
    heldout_pairs: int
    global_step: int
    resumed_from: str | None
    train_time_s: float
    wall_time_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------- data order


def _length(p: Pair) -> int:
    return sum(len(m["content"]) for m in p.prompt) + max(len(p.chosen), len(p.rejected))


def _grouped_batches(pairs: Sequence[Pair], micro: int, seed: int, group_by_length: bool) -> list[list[Pair]]:
    """Seeded shuffle; with ``group_by_length`` sort within chunks of 32 micro-batches so a micro-batch
    holds similar lengths (less padding), then shuffle the order of the full micro-batches."""
    rng = random.Random(seed)
    items = list(pairs)
    rng.shuffle(items)
    if group_by_length:
        chunk = micro * 32
        items = [p for i in range(0, len(items), chunk)
                 for p in sorted(items[i:i + chunk], key=_length, reverse=True)]
    batches = [items[i:i + micro] for i in range(0, len(items), micro)]
    full = [b for b in batches if len(b) == micro]
    rng.shuffle(full)
    return full + [b for b in batches if len(b) < micro]  # a partial batch stays last: boundaries stay aligned


def ordered_pair_rows(pairs: Sequence[Pair], micro: int, seed: int, group_by_length: bool) -> list[dict]:
    """Rows for the pairwise trainers, in training order (the trainer reads them sequentially)."""
    return [p.to_trl() for b in _grouped_batches(pairs, micro, seed, group_by_length) for p in b]


def ordered_kto_rows(pairs: Sequence[Pair], micro: int, seed: int, group_by_length: bool) -> list[dict]:
    """KTO rows in training order. ``micro`` pairs of similar length make two micro-batches,
    ``[c0, r1, c2, ...]`` and ``[r0, c1, r2, ...]``: each is half desirable, half undesirable and has
    ``micro`` different prompts, so KTO's KL estimate (completion of the previous row in the batch)
    always pairs a prompt with another prompt's completion."""
    rows: list[dict] = []
    for batch in _grouped_batches(pairs, micro, seed, group_by_length):
        a = [kto_row(p.prompt, p.chosen if i % 2 == 0 else p.rejected, i % 2 == 0) for i, p in enumerate(batch)]
        b = [kto_row(p.prompt, p.rejected if i % 2 == 0 else p.chosen, i % 2 == 1) for i, p in enumerate(batch)]
        rows.extend(a + b)
    return rows


# --------------------------------------------------------------------------------------------- logging


def _log_callback(path: Path, keep_until_step: int | None):
    from transformers import TrainerCallback

    class JsonlLogCallback(TrainerCallback):
        """Appends one JSON line per logging step (main process only)."""

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            rows = []
            if keep_until_step is not None and path.is_file():  # resumed: drop lines after the checkpoint
                rows = [r for r in map(json.loads, path.read_text().splitlines()) if r.get("step", 0)
                        <= keep_until_step]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs or "train_runtime" in logs:
                return
            row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
            row.update({k: float(v) for k, v in logs.items() if isinstance(v, int | float) and k != "epoch"})
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    return JsonlLogCallback()


# --------------------------------------------------------------------------------------------- training


def _device() -> str:
    import torch

    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true") or not torch.cuda.is_available():
        return "cpu"
    return "cuda"


def _trl_trainer(cfg: TrainConfig, st: ChosenSettings, ckpt_dir: Path):
    """The TRL config class and trainer class for ``cfg.algo``, with the config built."""
    common: dict[str, Any] = dict(
        output_dir=str(ckpt_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        per_device_train_batch_size=st.per_device_batch_size,
        gradient_accumulation_steps=st.gradient_accumulation_steps,
        gradient_checkpointing=st.gradient_checkpointing,
        bf16=st.mixed_precision == "bf16", fp16=st.mixed_precision == "fp16", use_cpu=st.device == "cpu",
        logging_steps=cfg.logging_steps, save_strategy="steps" if cfg.save_steps else "epoch",
        save_steps=cfg.save_steps or 500, save_total_limit=cfg.save_total_limit, seed=cfg.seed,
        data_seed=cfg.seed, report_to="none", max_length=cfg.max_length, beta=cfg.beta,
        # The data is put in training order by ordered_*_rows (length-grouped, shuffled batches;
        # KTO needs this sequential reading for its KL pairing anyway).
        train_sampling_strategy="sequential", dataloader_num_workers=0,
    )
    if st.gradient_checkpointing:
        common["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if cfg.algo in ("dpo", "ipo"):
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**common, loss_type=["sigmoid" if cfg.algo == "dpo" else "ipo"],
                         precompute_ref_log_probs=st.precompute_ref_log_probs,
                         precompute_ref_batch_size=st.per_device_batch_size,  # = the length-grouped batches
                         trust_remote_code=cfg.trust_remote_code)
        return args, DPOTrainer
    if cfg.algo == "kto":
        from trl import KTOConfig, KTOTrainer

        args = KTOConfig(**common, loss_type="kto", desirable_weight=cfg.desirable_weight,
                         undesirable_weight=cfg.undesirable_weight,
                         precompute_ref_log_probs=st.precompute_ref_log_probs,
                         precompute_ref_batch_size=st.per_device_batch_size,  # = the length-grouped batches
                         trust_remote_code=cfg.trust_remote_code)
        return args, KTOTrainer
    if cfg.algo == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        # cpo_alpha=0: pure SimPO (CPO adds a behaviour-cloning NLL term otherwise).
        args = CPOConfig(**common, loss_type="simpo", cpo_alpha=0.0, simpo_gamma=cfg.simpo_gamma,
                         trust_remote_code=cfg.trust_remote_code)
        return args, CPOTrainer
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    args = ORPOConfig(**common, trust_remote_code=cfg.trust_remote_code)
    return args, ORPOTrainer


def _lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    targets: str | list[str] = cfg.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM", bias="none")


def _zero3() -> bool:
    try:
        from transformers.integrations import is_deepspeed_zero3_enabled

        return bool(is_deepspeed_zero3_enabled())
    except ImportError:
        return False


def _console(console):
    if console is not None:
        return console
    from rich.console import Console

    return Console(stderr=True)


def heldout_pairs_of(groups: Sequence[PreferenceGroup]) -> list[Pair]:
    """Every negative of every held-out record (so each error type gets its own accuracy)."""
    return select_pairs(groups, "all", 0)


def train(pairs_path: str | Path, config: TrainConfig | None = None, *, callbacks: Sequence[Any] = (),
          console: Any = None) -> TrainResult:
    """Train ``config.model`` on the pairs in ``pairs_path`` (``pairs.jsonl``, ``negatives.jsonl`` or
    ``kto.jsonl``); see the module docstring for what is written. ``callbacks``: extra
    ``transformers.TrainerCallback`` objects (e.g. to stop early). Returns a :class:`TrainResult`."""
    import torch
    from accelerate import PartialState
    from transformers import AutoModelForCausalLM
    from transformers.trainer_utils import get_last_checkpoint

    from seapo.models import load_tokenizer, resolve_model
    from seapo.train.heldout import preference_accuracy
    from seapo.train.plot import plot_log

    cfg = config or TrainConfig()
    t_start = time.perf_counter()
    out = Path(cfg.output_dir).resolve()
    ckpt_dir = out / "checkpoints"
    log_path, plot_path, heldout_path = out / LOG_NAME, out / PLOT_NAME, out / "heldout.json"
    console = _console(console)

    # Data: read, split by record, pick pairs.
    loaded = load_preferences(pairs_path)
    train_groups, held_groups = split_heldout(loaded.groups, cfg.heldout_fraction, cfg.seed)
    train_pairs = select_pairs(train_groups, cfg.pairing, cfg.seed)
    held_pairs = heldout_pairs_of(held_groups)
    extra_kto = unpaired_kto_rows(train_groups) if cfg.algo == "kto" else []
    if not train_pairs and not extra_kto:
        from seapo.errors import InputError

        raise InputError("no usable training pairs (each record needs a positive and a negative)",
                         path=str(pairs_path))

    # Hardware-dependent settings.
    resolved = resolve_model(cfg.model)
    tokenizer = load_tokenizer(resolved, trust_remote_code=cfg.trust_remote_code, padding_side="right")
    # A prompt that fills max_length leaves no response token to learn from (TRL would drop it
    # silently, and after our batch ordering): drop it here and say so.
    train_pairs, dropped_train = drop_long_prompts(train_pairs, tokenizer, cfg.max_length)
    held_pairs, dropped_held = drop_long_prompts(held_pairs, tokenizer, cfg.max_length)
    if not train_pairs and not extra_kto:
        from seapo.errors import InputError

        raise InputError(f"every training prompt is at least max_length={cfg.max_length} tokens long",
                         path=str(pairs_path))
    from transformers import AutoConfig

    model_cfg = AutoConfig.from_pretrained(resolved.path, trust_remote_code=cfg.trust_remote_code)
    device = _device()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    shape_guess = ModelShape.from_config(model_cfg, 0)
    # params from the config shape (the model is loaded only after TrainingArguments, for ZeRO-3)
    shape_guess.params = _param_estimate(shape_guess, model_cfg)
    st = choose_settings(cfg, shape_guess, device, world)
    if cfg.algo == "kto" and st.per_device_batch_size < 2:
        raise ValueError("kto needs per_device_batch_size >= 2 (its KL estimate pairs examples within a batch)")
    args, trainer_cls = _trl_trainer(cfg, st, ckpt_dir)  # before loading: DeepSpeed ZeRO-3 hooks in here
    state = PartialState()
    main = state.is_main_process

    resume_from = None
    if cfg.resume and ckpt_dir.is_dir():
        resume_from = get_last_checkpoint(str(ckpt_dir))
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "settings.json", {"config": cfg.model_dump(), "model": resolved.path,
                                           "chosen": st.to_dict(), "input": str(Path(pairs_path).resolve()),
                                           "input_layout": loaded.layout, "input_rows": loaded.rows,
                                           "records": len(loaded.groups), "train_records": len(train_groups),
                                           "heldout_records": len(held_groups), "train_pairs": len(train_pairs),
                                           "heldout_pairs": len(held_pairs), "resume_from": resume_from,
                                           "dropped_long_prompt_pairs": {"train": dropped_train,
                                                                         "heldout": dropped_held}})
        _print_settings(console, cfg, st, resolved.name, len(train_pairs), len(held_pairs), resume_from)
        if dropped_train or dropped_held:
            console.print(f"[yellow]dropped {dropped_train} training and {dropped_held} held-out pairs whose "
                          f"prompt alone has >= max_length={cfg.max_length} tokens[/yellow]")
        if cfg.resume and resume_from is None:
            console.print("[yellow]resume: no checkpoint in "
                          f"{ckpt_dir}; starting from the beginning[/yellow]")

    base_dtype = getattr(torch, st.base_weights_dtype)
    model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=base_dtype,
                                                 trust_remote_code=cfg.trust_remote_code)
    model.config.use_cache = False

    # Held-out accuracy before training (reused on resume: the base model has not changed).
    do_heldout = bool(held_pairs) and not _zero3()
    before = None
    if do_heldout and main:
        previous = json.loads(heldout_path.read_text()) if (resume_from and heldout_path.is_file()) else {}
        if previous.get("pairs") == [p.id for p in held_pairs] and previous.get("before"):
            before = previous["before"]
        else:
            model.to(state.device)
            before = preference_accuracy(model, held_pairs, tokenizer, batch_size=cfg.heldout_batch_size,
                                         max_length=cfg.max_length)
            write_json(heldout_path, {"pairs": [p.id for p in held_pairs], "before": before, "after": None})
        console.print(f"held-out preference accuracy before: {before['overall']['accuracy']:.3f} "
                      f"(mean margin {before['overall']['mean_margin']:.3f}, n={before['overall']['n']})")
    state.wait_for_everyone()

    # Training rows in training order.
    from datasets import Dataset

    micro = st.per_device_batch_size
    if cfg.algo == "kto":
        rows = ordered_kto_rows(train_pairs, micro, cfg.seed, cfg.group_by_length) + extra_kto
    else:
        rows = ordered_pair_rows(train_pairs, micro, cfg.seed, cfg.group_by_length)
    # File-backed under OUT/data: TRL's map and reference log-prob caches then sit next to it, shared
    # by every process (an in-memory dataset caches in a per-process temp dir) and reused on resume.
    import hashlib

    digest = hashlib.sha256(json.dumps([cfg.algo, rows], sort_keys=True).encode()).hexdigest()[:16]
    data_dir = out / "data" / f"{cfg.algo}-{digest}"
    if main and not (data_dir / "dataset_info.json").is_file():
        tmp_dir = data_dir.with_name(data_dir.name + ".partial")
        Dataset.from_list(rows).save_to_disk(str(tmp_dir))
        os.replace(tmp_dir, data_dir)
    state.wait_for_everyone()
    from datasets import load_from_disk

    dataset = load_from_disk(str(data_dir))

    trainer = trainer_cls(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=_lora_config(cfg) if cfg.lora else None,
                          callbacks=[_log_callback(log_path, _step_of(resume_from)), *callbacks])
    t_train = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    train_time = time.perf_counter() - t_train

    adapter_dir = merged_dir = None
    if cfg.lora:
        adapter_dir = out / "adapter"
        trainer.save_model(str(adapter_dir))
    else:
        merged_dir = out / "merged"
        trainer.save_model(str(merged_dir))
    if main:
        tokenizer.save_pretrained(str(adapter_dir or merged_dir))

    after = None
    if do_heldout and main:
        policy = trainer.accelerator.unwrap_model(trainer.model)
        after = preference_accuracy(policy, held_pairs, tokenizer, batch_size=cfg.heldout_batch_size,
                                    max_length=cfg.max_length)
        write_json(heldout_path, {"pairs": [p.id for p in held_pairs], "before": before, "after": after,
                                  "per_error_type_before": before["per_error_type"],
                                  "per_error_type_after": after["per_error_type"]})
        console.print(f"held-out preference accuracy after: {after['overall']['accuracy']:.3f} "
                      f"(mean margin {after['overall']['mean_margin']:.3f})")
    global_step = trainer.state.global_step
    del trainer, model
    if main and cfg.lora and cfg.merge:
        merged_dir = out / "merged"
        merge_adapter(resolved.path, adapter_dir, merged_dir, tokenizer, cfg.trust_remote_code)
    if main and log_path.is_file() and log_path.stat().st_size:
        plot_log(log_path, plot_path, title=f"seapo train: {cfg.algo} on {resolved.name}")
    state.wait_for_everyone()

    result = TrainResult(
        output_dir=str(out), adapter_dir=str(adapter_dir) if adapter_dir else None,
        merged_dir=str(merged_dir) if merged_dir else None, log_path=str(log_path),
        plot_path=str(plot_path) if plot_path.is_file() else None,
        heldout_path=str(heldout_path) if do_heldout else None, heldout_before=before, heldout_after=after,
        settings=st.to_dict(), train_pairs=len(train_pairs), train_examples=len(rows),
        heldout_pairs=len(held_pairs), global_step=global_step, resumed_from=resume_from,
        train_time_s=round(train_time, 2), wall_time_s=round(time.perf_counter() - t_start, 2))
    if main:
        write_json(out / "result.json", result.to_dict())
    return result


def drop_long_prompts(pairs: Sequence[Pair], tokenizer: Any, max_length: int) -> tuple[list[Pair], int]:
    """Pairs whose chat-templated prompt is shorter than ``max_length`` tokens, and how many were not."""
    lengths: dict[str, int] = {}
    kept = []
    for p in pairs:
        key = p.record_id or json.dumps(p.prompt)
        if key not in lengths:
            lengths[key] = len(tokenizer.apply_chat_template(p.prompt, add_generation_prompt=True, tokenize=True,
                                                             return_dict=True)["input_ids"])
        if lengths[key] < max_length:
            kept.append(p)
    return kept, len(pairs) - len(kept)


def merge_adapter(base_path: str, adapter_dir: Path, merged_dir: Path, tokenizer: Any,
                  trust_remote_code: bool = False) -> Path:
    """Fold the adapter into a fresh copy of the base weights (in their original dtype) and save
    a plain model folder with the tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if _zero3():  # the merge runs on one process: ZeRO-3 must not shard this fresh copy
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype="auto", trust_remote_code=trust_remote_code)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.config.use_cache = True
    merged.save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    del base, merged
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return merged_dir


def _step_of(checkpoint: str | None) -> int | None:
    if checkpoint is None:
        return None
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _param_estimate(shape: ModelShape, model_cfg: Any) -> int:
    text = model_cfg.get_text_config() if hasattr(model_cfg, "get_text_config") else model_cfg
    inter = getattr(text, "intermediate_size", 4 * shape.hidden)
    per_layer = 4 * shape.hidden * shape.hidden + 3 * shape.hidden * inter
    tied = getattr(text, "tie_word_embeddings", False)
    return shape.layers * per_layer + shape.vocab * shape.hidden * (1 if tied else 2)


def _print_settings(console: Any, cfg: TrainConfig, st: ChosenSettings, model_name: str, n_train: int,
                    n_held: int, resume_from: str | None) -> None:
    from rich.table import Table

    table = Table(title=f"seapo train: {cfg.algo} on {model_name}", show_header=False)
    rows = [("train pairs / held-out pairs", f"{n_train} / {n_held}"),
            ("device x processes", f"{st.device} x {st.world_size}"),
            ("dtype (base weights / autocast)", f"{st.base_weights_dtype} / {st.mixed_precision}"),
            ("LoRA", f"r={cfg.lora_r} alpha={cfg.lora_alpha} dropout={cfg.lora_dropout} "
                     f"targets={cfg.lora_target_modules}" if cfg.lora else "off (full fine-tuning)"),
            ("batch (per device x accumulation x processes)",
             f"{st.per_device_batch_size} x {st.gradient_accumulation_steps} x {st.world_size} = "
             f"{st.effective_batch_size}"),
            ("gradient checkpointing", str(st.gradient_checkpointing)),
            ("precomputed reference log-probs", str(st.precompute_ref_log_probs)),
            ("length-grouped batches", str(st.group_by_length)),
            ("lr / epochs / beta / schedule", f"{cfg.learning_rate} / {cfg.epochs} / {cfg.beta} / "
                                              f"{cfg.lr_scheduler}, warm-up {cfg.warmup_ratio}"),
            ("resume from", resume_from or "-")]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    for reason in st.reasons:
        console.print(f"  - {reason}")
