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
DeepSpeed): the trainer reads the launcher's environment. :func:`train` reads as the list of its
steps; each step is a function below it, in the order it runs. Two orderings matter under
several processes: the TrainingArguments are built before the model is loaded (DeepSpeed
ZeRO-3 hooks into model loading through them), and whatever only the main process does
(writing files, scoring the held-out pairs, merging) is followed by a barrier.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seapo.errors import InputError, TrainingDiverged
from seapo.fingerprint import file_digest
from seapo.io import dumps, write_json
from seapo.models.attention import without_cudnn_attention
from seapo.outputs import OutputSet, folder_lock
from seapo.train.config import DPO_LOSSES, TRAIN_OUTPUTS, TrainConfig
from seapo.train.data import (
    LoadedData,
    Pair,
    PreferenceGroup,
    drop_edits_past_max_length,
    drop_long_prompts,
    heldout_pairs_of,
    load_preferences,
    ordered_kto_rows,
    ordered_pair_rows,
    plain_kto_row,
    select_pairs,
    split_heldout,
    unpaired_kto_rows,
)
from seapo.train.heldout import format_figure, without_details
from seapo.train.settings import ChosenSettings, ModelShape, choose_settings

if TYPE_CHECKING:
    from accelerate import PartialState
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments

    from seapo.models import ResolvedModel

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


@dataclass(frozen=True)
class RunPaths:
    """The files of one run folder (absolute)."""

    out: Path

    @classmethod
    def of(cls, cfg: TrainConfig) -> RunPaths:
        return cls(Path(cfg.output_dir).resolve())

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"

    @property
    def log(self) -> Path:
        return self.out / LOG_NAME

    @property
    def plot(self) -> Path:
        return self.out / PLOT_NAME

    @property
    def heldout(self) -> Path:
        return self.out / "heldout.json"


@dataclass
class TrainingData:
    """The input as read and split by record, and the pairs each side uses."""

    source: Path
    loaded: LoadedData
    train_groups: list[PreferenceGroup]
    held_groups: list[PreferenceGroup]
    train_pairs: list[Pair]
    held_pairs: list[Pair]
    unpaired_kto: list[dict[str, Any]] = field(default_factory=list)
    """KTO rows of records that cannot form a pair (kto only)."""
    dropped_long: dict[str, int] = field(default_factory=lambda: {"train": 0, "heldout": 0})
    """Pairs dropped per side because their prompt alone fills max_length (see drop_unlearnable)."""
    dropped_past: dict[str, int] = field(default_factory=lambda: {"train": 0, "heldout": 0})
    """Pairs dropped per side because their responses differ only past max_length (drop_unlearnable)."""

    @property
    def held_ids(self) -> list[str]:
        return [p.id for p in self.held_pairs]

    def require_examples(self, message: str) -> None:
        """Raise when nothing is left to train on."""
        if not self.train_pairs and not self.unpaired_kto:
            raise InputError(message, path=str(self.source))


# --------------------------------------------------------------------------------------------- the run


def train(pairs_path: str | Path, config: TrainConfig | None = None, *, callbacks: Sequence[Any] = (),
          console: Any = None) -> TrainResult:
    """Train ``config.model`` on the pairs in ``pairs_path`` (``pairs.jsonl``, ``negatives.jsonl`` or
    ``kto.jsonl``); see the module docstring for what is written. ``callbacks``: extra
    ``transformers.TrainerCallback`` objects (e.g. to stop early). Returns a :class:`TrainResult`."""

    cfg = config or TrainConfig()
    if not Path(pairs_path).is_file():  # load_preferences' own check, before the lock creates the output folder
        raise InputError("training input not found", path=str(pairs_path))
    paths = RunPaths.of(cfg)
    # One training per output folder: the main process holds its lock (every process of a
    # multi-process run writes there, so only the main one takes it).
    # Masks of changing shapes (shared-prefix blocks, length-grouped batches): on a GPU cuDNN's attention
    # would build a graph per shape (docs/gpu.md).
    with folder_lock(paths.out) if _launched_as_main() else contextlib.nullcontext(), without_cudnn_attention():
        return _train(pairs_path, cfg, paths, callbacks, console)


def _train(pairs_path: str | Path, cfg: TrainConfig, paths: RunPaths, callbacks: Sequence[Any],
           console: Any) -> TrainResult:
    from accelerate import PartialState

    t_start = time.perf_counter()
    console = _console(console)
    # The folder's files are one set (seapo.outputs): unpublished now, published after result.json,
    # so a run killed or diverged midway never leaves a new adapter beside an old result.
    output_set = None
    if _launched_as_main() and Path(pairs_path).is_file():
        output_set = OutputSet(paths.out, "train", {"config": cfg.record(), "pairs": file_digest(pairs_path)},
                               fix="train again into this folder, or choose another --output-dir")
        output_set.begin()

    data = load_data(pairs_path, cfg)
    resolved, tokenizer = resolve_policy(cfg)
    drop_unlearnable(data, tokenizer, cfg.max_length)
    st = choose_run_settings(cfg, resolved.path)
    args, trainer_cls = trl_arguments(cfg, st, paths.checkpoints)  # before the model: ZeRO-3 hooks in here
    state = PartialState()
    main = state.is_main_process
    resume_from = last_checkpoint(cfg, paths)
    if main:
        record_settings(cfg, st, resolved, data, paths, resume_from, console)

    model = load_policy(resolved.path, st, cfg)
    # ZeRO-3 shards the weights over the processes: none of them alone can score the held-out pairs.
    scored = bool(data.held_pairs) and not _zero3()
    before = (measure_heldout_before(model, data, tokenizer, cfg, paths, resume_from, state.device, console)
              if scored and main else None)
    state.wait_for_everyone()

    dataset, n_examples = training_dataset(data, cfg, st, paths, state, tokenizer)
    trainer, train_time = fit(trainer_cls, args, model, dataset, tokenizer, cfg, paths, resume_from, callbacks, st)
    adapter_dir, merged_dir = save_trained(trainer, tokenizer, cfg, paths, main)
    after = measure_heldout_after(trainer, data, tokenizer, cfg, paths, before, console) if before else None
    global_step = trainer.state.global_step
    del trainer, model  # free the trained copy before the merge loads a fresh base
    if main:
        if adapter_dir and cfg.merge:
            merged_dir = merge_adapter(resolved.path, adapter_dir, paths.out / "merged", tokenizer,
                                       cfg.trust_remote_code)
        plot_training_log(cfg, resolved, paths)
    state.wait_for_everyone()

    result = TrainResult(
        output_dir=str(paths.out), adapter_dir=str(adapter_dir) if adapter_dir else None,
        merged_dir=str(merged_dir) if merged_dir else None, log_path=str(paths.log),
        plot_path=str(paths.plot) if paths.plot.is_file() else None,
        heldout_path=str(paths.heldout) if scored else None, heldout_before=without_details(before),
        heldout_after=without_details(after),
        settings=st.to_dict(), train_pairs=len(data.train_pairs), train_examples=n_examples,
        heldout_pairs=len(data.held_pairs), global_step=global_step, resumed_from=resume_from,
        train_time_s=round(train_time, 2), wall_time_s=round(time.perf_counter() - t_start, 2))
    if main:
        write_json(paths.out / "result.json", result.to_dict())
        if output_set is not None:
            output_set.commit(name for name in TRAIN_OUTPUTS if (paths.out / name).exists())
    return result


# --------------------------------------------------------------------------------------------- its steps


def load_data(pairs_path: str | Path, cfg: TrainConfig) -> TrainingData:
    """Read the input, split off the held-out records, pick the training pairs."""
    loaded = load_preferences(pairs_path)
    train_groups, held_groups = split_heldout(loaded.groups, cfg.heldout_fraction, cfg.seed)
    extra = [g for path in cfg.heldout_pairs for g in load_preferences(path).groups]
    if extra:  # held-out sets given as files: their records never train
        extra_ids = {g.record_id for g in extra}
        train_groups = [g for g in train_groups if g.record_id not in extra_ids]
        held_groups = held_groups + extra
    data = TrainingData(
        source=Path(pairs_path), loaded=loaded, train_groups=train_groups, held_groups=held_groups,
        train_pairs=select_pairs(train_groups, cfg.pairing, cfg.seed),
        held_pairs=list({p.id: p for p in heldout_pairs_of(held_groups)}.values()),  # a pair given twice: once
        unpaired_kto=unpaired_kto_rows(train_groups) if cfg.algo == "kto" else [])
    data.require_examples("no usable training pairs (each record needs a positive and a negative)")
    return data


def resolve_policy(cfg: TrainConfig) -> tuple[ResolvedModel, PreTrainedTokenizerBase]:
    """Where the policy model lives, and its tokenizer (right-padded, as TRL's trainers pad)."""
    from seapo.models import load_tokenizer, resolve_model

    resolved = resolve_model(cfg.model)
    return resolved, load_tokenizer(resolved, trust_remote_code=cfg.trust_remote_code, padding_side="right")


def drop_unlearnable(data: TrainingData, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
    """Drop the pairs whose prompt alone fills ``max_length`` (no response token would be left to
    learn from or score: TRL would drop them silently, and after our batch ordering), and those whose
    responses differ only past it (no preference left to learn or score)."""
    data.train_pairs, data.dropped_long["train"] = drop_long_prompts(data.train_pairs, tokenizer, max_length)
    data.held_pairs, data.dropped_long["heldout"] = drop_long_prompts(data.held_pairs, tokenizer, max_length)
    data.train_pairs, data.dropped_past["train"] = drop_edits_past_max_length(data.train_pairs, tokenizer, max_length)
    data.held_pairs, data.dropped_past["heldout"] = drop_edits_past_max_length(data.held_pairs, tokenizer, max_length)
    data.require_examples(f"every training prompt is at least max_length={max_length} tokens long")


def choose_run_settings(cfg: TrainConfig, model_path: str) -> ChosenSettings:
    """Dtype, micro-batch, accumulation and checkpointing for this model on this hardware. The
    model's size comes from its config: the model itself is loaded only after the TrainingArguments."""
    from transformers import AutoConfig

    model_cfg = AutoConfig.from_pretrained(model_path, trust_remote_code=cfg.trust_remote_code)
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch / torchrun
    return choose_settings(cfg, ModelShape.from_config(model_cfg), _device(), world)


def trl_arguments(cfg: TrainConfig, st: ChosenSettings, ckpt_dir: Path
                  ) -> tuple[TrainingArguments, type[Trainer]]:
    """The TRL config for ``cfg.algo``, built, and the trainer class that takes it."""
    common: dict[str, Any] = dict(
        output_dir=str(ckpt_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        # transformers 5 reads a warmup_steps below 1 as a fraction of the total steps (warmup_ratio is gone).
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        per_device_train_batch_size=st.per_device_batch_size,
        gradient_accumulation_steps=st.gradient_accumulation_steps,
        gradient_checkpointing=st.gradient_checkpointing,
        bf16=st.mixed_precision == "bf16", fp16=st.mixed_precision == "fp16", use_cpu=st.device == "cpu",
        logging_steps=cfg.logging_steps, save_strategy="steps" if cfg.save_steps else "epoch",
        save_steps=cfg.save_steps or 500, save_total_limit=cfg.save_total_limit, seed=cfg.seed,
        data_seed=cfg.seed, report_to="none", max_length=cfg.max_length, beta=cfg.beta,
        trust_remote_code=cfg.trust_remote_code,
        # The data is put in training order by ordered_*_rows (length-grouped, shuffled batches;
        # KTO needs this sequential reading for its KL pairing anyway).
        train_sampling_strategy="sequential", dataloader_num_workers=0,
    )
    if st.gradient_checkpointing:
        common["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    # kto/dpo/ipo keep a reference model; its log-probs are computed in batches of the training
    # micro-batch, i.e. over the same length-grouped batches.
    reference = dict(precompute_ref_log_probs=st.precompute_ref_log_probs,
                     precompute_ref_batch_size=st.per_device_batch_size)
    # shared_prefix: the same TRL trainer with the shared-prefix forward (seapo.train.shared_prefix).
    from seapo.train.shared_prefix import shared_prefix_trainer

    def trainer_of(base: type[Trainer]) -> type[Trainer]:
        return shared_prefix_trainer(cfg.algo) if cfg.shared_prefix else base

    if cfg.algo in DPO_LOSSES:
        from trl import DPOConfig, DPOTrainer

        return (DPOConfig(**common, **reference, loss_type=[DPO_LOSSES[cfg.algo]], ld_alpha=cfg.ld_alpha),
                trainer_of(DPOTrainer))
    if cfg.algo == "kto":
        from trl import KTOConfig, KTOTrainer

        return KTOConfig(**common, **reference, loss_type="kto", desirable_weight=cfg.desirable_weight,
                         undesirable_weight=cfg.undesirable_weight), trainer_of(KTOTrainer)
    if cfg.algo == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        # cpo_alpha=0: pure SimPO (CPO adds a behaviour-cloning NLL term otherwise).
        return (CPOConfig(**common, loss_type="simpo", cpo_alpha=0.0, simpo_gamma=cfg.simpo_gamma),
                trainer_of(CPOTrainer))
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return ORPOConfig(**common), trainer_of(ORPOTrainer)


def last_checkpoint(cfg: TrainConfig, paths: RunPaths) -> str | None:
    """The checkpoint to resume from (``resume: true`` and one exists), else None."""
    from transformers.trainer_utils import get_last_checkpoint

    if cfg.resume and paths.checkpoints.is_dir():
        return get_last_checkpoint(str(paths.checkpoints))
    return None


def record_settings(cfg: TrainConfig, st: ChosenSettings, resolved: ResolvedModel, data: TrainingData,
                    paths: RunPaths, resume_from: str | None, console: Any) -> None:
    """Write settings.json and print the settings table (main process)."""
    paths.out.mkdir(parents=True, exist_ok=True)
    write_json(paths.out / "settings.json", {
        "config": cfg.record(), "model": resolved.path, "chosen": st.to_dict(),
        "input": str(data.source.resolve()), "input_layout": data.loaded.layout, "input_rows": data.loaded.rows,
        "records": len(data.loaded.groups), "train_records": len(data.train_groups),
        "heldout_records": len({g.record_id for g in data.held_groups}), "train_pairs": len(data.train_pairs),
        "heldout_pairs": len(data.held_pairs), "resume_from": resume_from,
        "dropped_long_prompt_pairs": data.dropped_long, "dropped_edit_past_max_length_pairs": data.dropped_past})
    _print_settings(console, cfg, st, resolved.name, len(data.train_pairs), len(data.held_pairs), resume_from)
    dropped_train, dropped_held = data.dropped_long["train"], data.dropped_long["heldout"]
    if dropped_train or dropped_held:
        console.print(f"[yellow]dropped {dropped_train} training and {dropped_held} held-out pairs whose "
                      f"prompt alone has >= max_length={cfg.max_length} tokens[/yellow]")
    if data.dropped_past["train"] or data.dropped_past["heldout"]:
        console.print(f"[yellow]dropped {data.dropped_past['train']} training and {data.dropped_past['heldout']} "
                      f"held-out pairs whose responses differ only past max_length={cfg.max_length} tokens (the "
                      "injected error is cut off: truncated, the two are the same text)[/yellow]")
    if cfg.resume and resume_from is None:
        console.print(f"[yellow]resume: no checkpoint in {paths.checkpoints}; starting from the beginning[/yellow]")


def load_policy(model_path: str, st: ChosenSettings, cfg: TrainConfig) -> PreTrainedModel:
    """The model to train, its frozen weights stored in the chosen dtype."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, st.base_weights_dtype),
                                                 trust_remote_code=cfg.trust_remote_code)
    model.config.use_cache = False  # no generation during training; the cache only costs memory
    return model


def measure_heldout_before(model: PreTrainedModel, data: TrainingData, tokenizer: PreTrainedTokenizerBase,
                           cfg: TrainConfig, paths: RunPaths, resume_from: str | None, device: Any,
                           console: Any) -> dict[str, Any]:
    """Held-out accuracy of the untrained model (main process). A resumed run reuses the one it
    measured before the interruption: the base model has not changed."""
    previous = json.loads(paths.heldout.read_text()) if (resume_from and paths.heldout.is_file()) else {}
    shared = _before_cache_path(model, data, cfg, device) if cfg.data_cache_dir else None
    if previous.get("pairs") == data.held_ids and (previous.get("before") or {}).get("details"):
        before = previous["before"]
    elif shared is not None and shared.is_file():
        before = json.loads(shared.read_text())
    else:
        model.to(device)
        before = _score_heldout(model, data, tokenizer, cfg)
        if shared is not None:
            write_json(shared, before)
    write_json(paths.heldout, {"pairs": data.held_ids, "before": before, "after": None})
    _print_heldout_line(console, "before", before)
    return before


def _before_cache_path(model: PreTrainedModel, data: TrainingData, cfg: TrainConfig, device: Any) -> Path:
    """Where runs sharing a ``data_cache_dir`` keep the untrained model's held-out figures: every
    condition of a study scores the same held-out files from the same base model, so one measures
    them. Keyed by what the figures depend on: the weights (their files' names, sizes and times), the
    pairs, the scoring settings, the dtype and device, seapo's and torch's versions."""
    import torch

    import seapo

    folder = Path(getattr(model, "name_or_path", "") or "")
    files = sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [str(folder)]
    key = hashlib.sha256(json.dumps([files, [asdict(p) for p in data.held_pairs], cfg.heldout_batch_size,
                                     cfg.max_length, cfg.seed, str(model.dtype), str(device), seapo.__version__,
                                     torch.__version__]).encode()).hexdigest()[:16]
    return Path(cfg.data_cache_dir or ".").resolve() / f"heldout-before-{key}.json"


def training_dataset(data: TrainingData, cfg: TrainConfig, st: ChosenSettings, paths: RunPaths,
                     state: PartialState, tokenizer: PreTrainedTokenizerBase) -> tuple[Dataset, int]:
    """The training rows in training order, as a dataset, and how many rows it has (``focus:
    divergent``: plain-text rows whose prompt holds the pair's shared response prefix).

    File-backed under OUT/data (or ``data_cache_dir``), named by its rows: TRL's map and reference
    log-prob caches then sit next to it, shared by every process (an in-memory dataset caches in a
    per-process temp dir), reused on resume and by other runs of the same rows and model.
    """
    from datasets import Dataset, load_from_disk

    micro = st.per_device_batch_size
    focus = dict(tokenizer=tokenizer, focus=cfg.focus)
    if cfg.algo == "kto":
        unpaired = [r if cfg.focus == "full" else plain_kto_row(tokenizer, r) for r in data.unpaired_kto]
        rows = ordered_kto_rows(data.train_pairs, micro, cfg.seed, cfg.group_by_length, **focus) + unpaired
    else:
        rows = ordered_pair_rows(data.train_pairs, micro, cfg.seed, cfg.group_by_length, **focus)
    if cfg.max_steps > 0:
        # Rows are read in this order (sequential sampler), so those past max_steps updates are never
        # trained on: not tokenizing them or running the reference over them saves that time.
        rows = rows[:cfg.max_steps * st.effective_batch_size]
    digest = hashlib.sha256(json.dumps([cfg.algo, rows], sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cfg.data_cache_dir).resolve() if cfg.data_cache_dir else paths.out / "data"
    data_dir = cache / f"{cfg.algo}-{digest}"
    if state.is_main_process and not (data_dir / "dataset_info.json").is_file():
        tmp_dir = data_dir.with_name(data_dir.name + ".partial")
        Dataset.from_list(rows).save_to_disk(str(tmp_dir))
        os.replace(tmp_dir, data_dir)  # complete or absent: a crash mid-write leaves no half dataset to reuse
    state.wait_for_everyone()
    return load_from_disk(str(data_dir)), len(rows)


def fit(trainer_cls: type[Trainer], args: TrainingArguments, model: PreTrainedModel, dataset: Dataset,
        tokenizer: PreTrainedTokenizerBase, cfg: TrainConfig, paths: RunPaths, resume_from: str | None,
        callbacks: Sequence[Any], st: ChosenSettings) -> tuple[Trainer, float]:
    """Train (from ``resume_from`` when given); returns the trainer and the training time (s)."""
    if getattr(trainer_cls, "packs_shared_prefix", False):
        from seapo.train.shared_prefix import shared_prefix_supported

        exact, why = shared_prefix_supported(model)
        if not exact:
            trainer_cls = trainer_cls.trl_base
            _console(None).print(f"[yellow]{why}[/yellow]")
    if st.precompute_ref_log_probs:
        trainer_cls = with_reference_cache(trainer_cls, reference_cache_key(dataset, cfg, st, trainer_cls))
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=_lora_config(cfg) if cfg.lora else None,
                          callbacks=[_log_callback(paths.log, _step_of(resume_from)), *callbacks,
                                     _finite_guard()])
    t_train = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    return trainer, time.perf_counter() - t_train


def reference_cache_key(dataset: Dataset, cfg: TrainConfig, st: ChosenSettings, trainer_cls: type) -> str:
    """What precomputed reference log-probs depend on, less the reference weights (TRL adds their
    hash): the rows (the data folder, named by their digest), tokenizer and truncation, the batches
    (KTO's KL rows and padding follow them), dtype, the forward (shared-prefix or TRL's), TRL's version."""
    import trl

    folder = Path(dataset.cache_files[0]["filename"]).parent.name if dataset.cache_files else None
    return hashlib.sha256(json.dumps([folder, cfg.model, cfg.max_length, st.per_device_batch_size,
                                      st.mixed_precision, cfg.dtype, trainer_cls.__name__, trl.__version__],
                                     sort_keys=True).encode()).hexdigest()[:16]


def with_reference_cache(trainer_cls: type[Trainer], key: str) -> type[Trainer]:
    """``trainer_cls`` whose reference log-prob cache is keyed by ``key`` (:func:`reference_cache_key`).

    TRL keys that cache on the dataset's fingerprint, which hashes the trainer's arguments (a filter
    closure of its dataset preparation captures them): every run with another learning rate or folder
    redid the reference pass over the same rows. Keyed by what the log-probs depend on, runs sharing a
    ``data_cache_dir`` (every point of a ``seapo tune``) compute them once."""
    from datasets import Dataset

    def _precompute_ref_logps(self: Any, dataset: Any, name: str, batch_size: int) -> Any:
        if isinstance(dataset, Dataset):
            from datasets.fingerprint import Hasher

            dataset._fingerprint = Hasher.hash((key, name, batch_size))
        return super(cls, self)._precompute_ref_logps(dataset, name, batch_size)

    cls = type(trainer_cls.__name__, (trainer_cls,), {"_precompute_ref_logps": _precompute_ref_logps,
                                                      "__module__": trainer_cls.__module__,
                                                      "__doc__": trainer_cls.__doc__})
    return cls


def save_trained(trainer: Trainer, tokenizer: PreTrainedTokenizerBase, cfg: TrainConfig, paths: RunPaths,
                 main: bool) -> tuple[Path | None, Path | None]:
    """Save the adapter (LoRA) or the whole model (full fine-tuning) with the tokenizer; returns
    ``(adapter_dir, merged_dir)``. Every process calls it: under ZeRO-3 saving gathers the shards."""
    target = paths.out / ("adapter" if cfg.lora else "merged")
    trainer.save_model(str(target))
    if main:
        tokenizer.save_pretrained(str(target))
        _readable_by_all(target)
    return (target, None) if cfg.lora else (None, target)


def measure_heldout_after(trainer: Trainer, data: TrainingData, tokenizer: PreTrainedTokenizerBase,
                          cfg: TrainConfig, paths: RunPaths, before: dict[str, Any], console: Any
                          ) -> dict[str, Any]:
    """Held-out figures of the trained model (main process), against ``before`` as the reference
    (the untrained model); heldout.json gets both measurements with their per-pair details."""
    after = _score_heldout(trainer.accelerator.unwrap_model(trainer.model), data, tokenizer, cfg, before)
    write_json(paths.heldout, {"pairs": data.held_ids, "before": before, "after": after,
                               "per_error_type_before": before["per_error_type"],
                               "per_error_type_after": after["per_error_type"]})
    _print_heldout_line(console, "after", after)
    return after


def plot_training_log(cfg: TrainConfig, resolved: ResolvedModel, paths: RunPaths) -> None:
    """train_log.png, when the run logged anything (main process)."""
    from seapo.train.plot import plot_log

    if paths.log.is_file() and paths.log.stat().st_size:
        plot_log(paths.log, paths.plot, title=f"seapo train: {cfg.algo} on {resolved.name}")


# --------------------------------------------------------------------------------------------- helpers


def _score_heldout(model: PreTrainedModel, data: TrainingData, tokenizer: PreTrainedTokenizerBase,
                   cfg: TrainConfig, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The held-out figures with per-pair details (``before``, the untrained model's, is the
    reference of the implicit reward)."""
    from seapo.train.heldout import preference_accuracy

    return preference_accuracy(model, data.held_pairs, tokenizer, batch_size=cfg.heldout_batch_size,
                               max_length=cfg.max_length, return_details=True, before=before, seed=cfg.seed)


def _print_heldout_line(console: Any, when: str, result: dict[str, Any]) -> None:
    """One line of the overall held-out figures (the table per error type comes at the end)."""
    overall = result["overall"]
    span, reward = overall["divergent_span"], overall["implicit_reward"]
    text = f"held-out {when}: divergent-span accuracy {format_figure(span['accuracy'], span['accuracy_ci'])}"
    if reward:
        text += (f", implicit-reward accuracy {format_figure(reward['accuracy'], reward['accuracy_ci'])} "
                 f"(mean margin {reward['mean_margin']:+.3f})")
    console.print(text + f", summed-logp accuracy (length-sensitive) {overall['summed_logp']['accuracy']:.3f}, "
                         f"n={overall['n']}")



def merge_adapter(base_path: str, adapter_dir: Path, merged_dir: Path, tokenizer: PreTrainedTokenizerBase,
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
    _readable_by_all(merged_dir)
    del base, merged
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return merged_dir


def _log_callback(path: Path, keep_until_step: int | None) -> Any:
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
                f.write(dumps(row) + "\n")  # a non-finite figure as null: the log stays standard JSON

    return JsonlLogCallback()


def _launched_as_main() -> bool:
    """Whether this is the main process, known before any distributed set-up: a launcher
    (accelerate launch, torchrun) gives each process its RANK. (PartialState() here, before the
    trainer's arguments exist, took every CPU process for the main one.)"""
    return int(os.environ.get("RANK", "0")) == 0


def _readable_by_all(folder: Path) -> None:
    """Give the saved model's files the mode of every other run file (0666 less the umask):
    some writers (safetensors through a temporary file) leave 0600."""
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _finite_guard() -> Any:
    """Stops training at the first step whose loss, gradient norm or trainable weights are not
    finite: :class:`TrainingDiverged` is raised before anything is saved as the result."""
    import torch
    from transformers import TrainerCallback

    class FiniteGuard(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            for key in ("loss", "grad_norm"):
                value = (logs or {}).get(key)
                if isinstance(value, int | float) and not math.isfinite(value):
                    raise TrainingDiverged(f"training diverged: {key} is {value} at step {state.global_step}")

        def on_step_end(self, args, state, control, model=None, **kwargs):
            # The weights, every step: a non-finite loss or gradient between two log lines shows here,
            # since AdamW turns it into non-finite weights. Trainable ones only (LoRA: a few MB).
            for name, param in model.named_parameters() if model is not None else ():
                if param.requires_grad and not bool(torch.isfinite(param).all()):
                    raise TrainingDiverged(f"training diverged: weight {name} is not finite after step "
                                           f"{state.global_step}")

    return FiniteGuard()


def _lora_config(cfg: TrainConfig) -> Any:
    from peft import LoraConfig

    targets: str | list[str] = cfg.lora_target_modules
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM", bias="none")


def _device() -> str:
    import torch

    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true") or not torch.cuda.is_available():
        return "cpu"
    return "cuda"


def _zero3() -> bool:
    try:
        from transformers.integrations import is_deepspeed_zero3_enabled

        return bool(is_deepspeed_zero3_enabled())
    except ImportError:
        return False


def _step_of(checkpoint: str | None) -> int | None:
    if checkpoint is None:
        return None
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _console(console: Any) -> Any:
    if console is not None:
        return console
    from rich.console import Console

    return Console(stderr=True)


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
