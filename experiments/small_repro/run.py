"""The paper's study at the scale this machine allows (issue 16; docs/results/small_repro.md).

    python experiments/small_repro/run.py [--stage data|configs|conditions|compare|table|all] [--only NAME ...]

Every step is a seapo command run through its Python API, each resumable, so the driver can be
stopped (kill -9 too) and rerun at any point and continues where it stopped:

1. ``data``: ``seapo prepare`` the UltraFeedback sample, ``seapo split`` it by record (train /
   heldout, seeded); the held-out pairs every condition is scored on: rules negatives of all three
   types (``seapo inject --strategy all``, judge-verified) and the source's own chosen vs rejected
   (transfer to real preferences).
2. ``tune``: ``seapo tune`` learning rate x update steps for SeaPO mixed KTO on a validation split
   of the train records (implicit-reward accuracy there; never the held-out split or a benchmark).
   ``configs``: one ``seapo run`` config per condition in ``configs/`` (committed; they are the
   study), all with the tune's choice (but the paper-rate condition).
3. ``conditions``: for the base model and each condition not yet done (its figures not all in
   ``results/``): ``seapo run`` its config, ``seapo eval`` its model (full TruthfulQA MC, MMLU 20
   per subject 5-shot; GSM8K, BBH and HumanEval subsets for base, vanilla and mixed), and copy the
   figures into ``results/<name>/`` -- commit them: the run folders (trained models) are not kept.
4. ``compare``: ``seapo compare`` per task group over ``results/``.
5. ``table``: ``table.py`` rebuilds docs/results/small_repro.md from ``results/``.

``--scale smoke --model DIR`` runs the same steps at tiny sizes (tests/experiments, with a tiny random model).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = os.environ.get("SEAPO_SHARED_DATA", "../shared/data")  # paths are relative to the repository root
ERROR_TYPES = ["correctness", "logic", "hallucination"]


@dataclass(frozen=True)
class Scale:
    """Sizes of the study: what fits this machine (the discussion states them)."""

    model: str = "embedded"
    source: str = f"{SHARED}/source/ultrafeedback/train_1k.jsonl"
    eval_data: str = f"{SHARED}/eval"
    profile_data: str = f"{SHARED}/source/gsm8k/train.jsonl"  # GSM8K train: no evaluation set is profiled
    profile_limit: int = 200
    split: dict[str, float] = field(default_factory=lambda: {"heldout": 0.15})
    validation_fraction: float = 0.15  # of the train records: seapo tune's validation split
    # A KTO update of 8 pairs (16 rows, up to 512 tokens) takes 15-35 s on the 2 cores: 40 steps are
    # ~20 minutes a condition, which is what lets the 16 trained conditions fit in some 10 hours.
    tune_grid: dict[str, list[Any]] = field(default_factory=lambda: {"learning_rate": [2.5e-4, 1e-3, 4e-3],
                                                                    "max_steps": [20, 40]})
    split_seed: int = 0
    train_records: int | None = None  # first N records of the train part (None: all)
    scored_records: int | None = None  # first N of the heldout part (None: all)
    max_length: int = 512
    kto_batch: int = 16  # rows: 8 pairs per update
    dpo_batch: int = 8  # pairs: the same 8 pairs per update as KTO
    seeds: tuple[int, ...] = (1, 2, 3)
    mmlu_per_subject: int = 20
    mmlu_tasks: tuple[str, ...] = ("mmlu",)  # every subject
    extra_limits: dict[str, int] = field(default_factory=lambda: {"gsm8k": 50, "bbh": 2, "humaneval": 20})
    eval_batch: int = 16
    dtype: str = "bf16"  # fixed: bf16 scores move with batch size and dtype (docs/benchmarks.md)
    truthfulqa_limit: int | None = None  # None: all 817 questions


SCALES = {
    "study": Scale(),
    "smoke": Scale(profile_limit=4, split={"heldout": 0.2}, validation_fraction=0.3,
                   tune_grid={"learning_rate": [1e-3, 5e-3], "max_steps": [2]}, train_records=30, scored_records=6,
                   max_length=256, kto_batch=4, dpo_batch=2, seeds=(1, 2), mmlu_per_subject=1,
                   mmlu_tasks=("mmlu:anatomy",),
                   extra_limits={"gsm8k": 2}, eval_batch=4, dtype="fp32", truthfulqa_limit=4),
}

TUNE_FILE = "tune.json"
"""``seapo tune``'s record (tune/tune.json, copied to results/tune.json): the learning rate and update
steps every condition uses (but the paper-rate one), chosen once on the validation split for SeaPO mixed KTO."""
PAPER_LR = 5e-6


@dataclass(frozen=True)
class Condition:
    name: str
    negatives: str = "injected"  # or "source": the data set's own rejected (vanilla)
    algo: str = "kto"
    strategy: str = "mixed"
    error_types: tuple[str, ...] = tuple(ERROR_TYPES)
    seed: int = 1
    profile: bool = False
    learning_rate: float | None = None  # None: the tuned one
    train: dict[str, Any] = field(default_factory=dict)  # further train settings (focus, loss)
    extra_eval: bool = False  # GSM8K, BBH, HumanEval subsets too


def conditions(scale: Scale) -> list[Condition]:
    """The issue's conditions (1 base is not a run: it is the untrained model)."""
    out: list[Condition] = []
    for seed in scale.seeds:  # 2, 6, 8: with seeds, to show the noise
        out += [Condition(f"vanilla-kto-s{seed}", negatives="source", seed=seed, extra_eval=True),
                Condition(f"seapo-kto-mixed-s{seed}", seed=seed, extra_eval=True),
                Condition(f"seapo-dpo-mixed-s{seed}", algo="dpo", seed=seed, extra_eval=True)]
    out += [Condition(f"seapo-kto-{t}", strategy="single", error_types=(t,)) for t in ERROR_TYPES]  # 3-5
    out += [Condition("seapo-kto-profile", strategy="profile", profile=True),  # 7
            Condition("vanilla-dpo", negatives="source", algo="dpo"),  # 9
            Condition("seapo-kto-mixed-divergent", train={"focus": "divergent"}),  # 10
            Condition("seapo-kto-mixed-paper-lr", learning_rate=PAPER_LR)]
    return out


def paths(root: Path) -> dict[str, Path]:
    data = root / "data"
    return {"records": data / "records.jsonl", "parts": data / "parts", "train": data / "train.jsonl",
            "heldout_seapo": data / "heldout-seapo" / "pairs.jsonl",
            "heldout_source": data / "heldout-source" / "pairs.jsonl", "tune": root / "tune",
            "tune_negatives": root / "tune" / "inject" / "negatives.jsonl"}


# ------------------------------------------------------------------------------------------------ stages


def stage_data(scale: Scale, root: Path) -> None:
    from seapo.data.prepare import PrepareConfig, prepare
    from seapo.data.split import SplitConfig, split_records
    from seapo.inject.pipeline import InjectConfig, inject
    from seapo.inject.source import source_negatives

    p = paths(root)
    if not p["records"].is_file():
        prepare(out=p["records"], config=PrepareConfig(source=scale.source, progress=False))
    split = split_records(p["records"], p["parts"], SplitConfig(parts=scale.split, seed=scale.split_seed))
    rows = split.paths["train"].read_text(encoding="utf-8").splitlines()[:scale.train_records]
    p["train"].write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    for part in ("heldout",):
        seapo_dir, source_dir = p[f"{part}_seapo"].parent, p[f"{part}_source"].parent
        records = split.paths[part]
        if scale.scored_records is not None:
            records = records.with_name(f"{part}-first{scale.scored_records}.jsonl")
            kept = split.paths[part].read_text(encoding="utf-8").splitlines()[:scale.scored_records]
            records.write_text("".join(r + "\n" for r in kept), encoding="utf-8")
        inject(records, seapo_dir, InjectConfig(injector="rules", strategy="all",
                                                          error_types=ERROR_TYPES, show_progress=False))
        source_negatives(records, source_dir)
    print(f"data: {split.counts} records; train uses {len(rows)}")


def train_section(c: Condition, scale: Scale, root: Path, tuned: dict[str, Any]) -> dict[str, Any]:
    """The paper's settings (KTO/DPO, LoRA r8/alpha16 on all linear layers, beta 0.1, cosine) with the
    tuned learning rate and update steps; scored on the study's fixed held-out files."""
    p = paths(root)
    batch = scale.kto_batch if c.algo == "kto" else scale.dpo_batch
    return {"model": scale.model, "algo": c.algo, "lora": True, "lora_r": 8, "lora_alpha": 16,
            "lora_target_modules": "all-linear", "beta": 0.1, "lr_scheduler": "cosine",
            "learning_rate": c.learning_rate or tuned["learning_rate"],
            # the same number of updates for every condition: epochs only bounds them
            "max_steps": tuned["max_steps"], "epochs": 100, "batch_size": batch, "max_length": scale.max_length,
            "seed": c.seed, "dtype": scale.dtype, "heldout_fraction": 0.0,
            "heldout_pairs": [str(p["heldout_seapo"]), str(p["heldout_source"])],
            # conditions of the same rows (mixed-s1 and the paper-rate one) run the reference pass once
            "data_cache_dir": str(root / "train-cache"), **c.train}


TUNED_ON = "seapo-kto-mixed-s1"
"""The condition whose settings the tune chooses (SeaPO mixed, KTO); the others take its choice."""


def stage_tune(scale: Scale, root: Path, results: Path) -> dict[str, Any]:
    """``seapo tune`` the learning rate and steps of SeaPO mixed KTO on a validation split of the train
    records (``validation_fraction``; the held-out files are never scored): inject its negatives as the
    condition does, then train every grid point. Resumable (tune.json); its record is copied into
    ``results/`` (committed: the configs of a later session, on a fresh machine, read it there). A
    committed record of a partial tune seeds a work folder that has none: its points are not redone."""
    from seapo.inject.pipeline import InjectConfig, inject
    from seapo.train.config import TrainConfig
    from seapo.train.tune import TuneConfig, tune

    p = paths(root)
    c = next(c for c in conditions(scale) if c.name == TUNED_ON)
    record, committed = p["tune"] / TUNE_FILE, results / TUNE_FILE
    if committed.is_file() and not record.is_file():  # a fresh machine: the committed points are not trained again
        record.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(committed, record)
    negatives = p["tune_negatives"]
    if not negatives.is_file():
        inject(p["train"], negatives.parent, InjectConfig(injector="rules", strategy=c.strategy, seed=c.seed,
                                                          error_types=list(c.error_types), show_progress=False))
    base = train_section(c, scale, root, {"learning_rate": 1e-4, "max_steps": 1})  # both are in the grid
    result = tune(TuneConfig(out=str(p["tune"]), pairs=str(negatives), grid=scale.tune_grid,
                             validation_fraction=scale.validation_fraction, metric="implicit_reward",
                             train=TrainConfig(**{**base, "pairing": "all"})))
    shutil.copyfile(result.path, results / TUNE_FILE)
    return result.choice


def tuned(results: Path) -> dict[str, Any]:
    """The tune's choice (learning rate, steps) with where it comes from; refuses before the tune ran."""
    path = results / TUNE_FILE
    choice = json.loads(path.read_text(encoding="utf-8")).get("choice") if path.is_file() else None
    if not choice:
        raise SystemExit(f"no tune choice in {path}: run `--stage tune` first (the configs take its settings)")
    shown = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path  # no machine paths
    return {**choice["settings"], "source": f"seapo tune on the validation split ({shown}; metric "
                                             f"{choice['metric']})"}


def run_config(c: Condition, scale: Scale, root: Path, tuned: dict[str, Any]) -> dict[str, Any]:
    """The ``seapo run`` config of one condition (what configs/<name>.yaml holds)."""
    p = paths(root)
    # A checkpoint every 10 updates: a condition killed (or stopped at a session's end) resumes from its last
    # one instead of from the start. Not in train_section: the tune's points were keyed without it.
    train = {**train_section(c, scale, root, tuned), "save_steps": 10}
    config: dict[str, Any] = {"out": str(root / "runs" / c.name), "negatives": c.negatives,
                              "prepare": {"source": str(p["train"]), "format": "seapo"},
                              "inject": {"injector": "rules", "strategy": c.strategy,
                                         "error_types": list(c.error_types), "seed": c.seed},
                              "train": train, "eval": None}
    if c.profile:
        config["profile"] = {"data": scale.profile_data, "limit": scale.profile_limit,
                             "policy": {"name": "transformers", "model": scale.model, "dtype": scale.dtype}}
    return config


def stage_configs(scale: Scale, root: Path, folder: Path, results: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    chosen = tuned(results)
    written = []
    for c in conditions(scale):
        path = folder / f"{c.name}.yaml"
        head = (f"# {c.name}: a condition of the small reproduction (experiments/small_repro/run.py writes this "
                f"file).\n# Learning rate and steps: {chosen['source']}.\n# Run alone: seapo run --config "
                f"{path.name}\n")
        path.write_text(head + yaml.safe_dump(run_config(c, scale, root, chosen), sort_keys=False),
                        encoding="utf-8")
        written.append(path)
    return written


def eval_groups(scale: Scale) -> dict[str, dict[str, Any]]:
    """Evaluation settings per group of tasks (one limit per seapo eval call)."""
    groups = {"truthfulqa": {"tasks": ["truthfulqa_mc"], "limit": scale.truthfulqa_limit},
              "mmlu": {"tasks": list(scale.mmlu_tasks), "limit": scale.mmlu_per_subject}}
    for task, limit in scale.extra_limits.items():
        groups[task] = {"tasks": [task], "limit": limit, "extra": True}
    return groups


def _groups_of(scale: Scale, extra: bool) -> list[str]:
    return [g for g, spec in eval_groups(scale).items() if extra or not spec.get("extra")]


def is_done(name: str, extra: bool, scale: Scale, results: Path) -> bool:
    """A condition is done when every figure it owes is in ``results/`` (committed: they outlive the run
    folders, whose trained models are too big to keep)."""
    folder = results / name
    needed = [folder / f"eval-{g}.json" for g in _groups_of(scale, extra)]
    if name != "base":
        needed.append(folder / "run.json")
    return all(p.is_file() for p in needed)


def run_condition(c: Condition | None, scale: Scale, root: Path, configs: Path, results: Path) -> None:
    """``seapo run`` one condition (None: the base model, untrained), evaluate its model, copy its figures
    into ``results/<name>/``. Every step skips what is done, so a rerun after a kill continues."""
    from seapo.evaluate.runner import EvalConfig, evaluate
    from seapo.pipeline.config import load_run_config
    from seapo.pipeline.run import run

    name, extra = ("base", True) if c is None else (c.name, c.extra_eval)
    out = results / name
    out.mkdir(parents=True, exist_ok=True)
    model = scale.model
    if c is not None:
        result = run(load_run_config(configs / f"{c.name}.yaml"))
        model = result.stages["train"]["merged_dir"]
        (out / "run.json").write_text(json.dumps(_run_record(result.out), indent=1, sort_keys=True) + "\n",
                                      encoding="utf-8")
    for group in _groups_of(scale, extra):
        spec = eval_groups(scale)[group]
        config = EvalConfig(tasks=spec["tasks"], limit=spec["limit"], data_dir=scale.eval_data,
                            out=str(root / "eval" / group), run_name=name, num_samples=0,
                            backend={"model": model, "dtype": scale.dtype, "batch_size": scale.eval_batch})
        shutil.copyfile(evaluate(model, config).metrics_path, out / f"eval-{group}.json")


def _run_record(run_dir: Path) -> dict[str, Any]:
    """What the table needs from a run folder: config, wall times, training size, the injection summary
    with its shortcut audit, the held-out figures (without per-pair details), the profile."""
    from seapo.train.heldout import without_details

    stages = json.loads((run_dir / "stages.json").read_text(encoding="utf-8"))
    heldout = json.loads((run_dir / "train" / "heldout.json").read_text(encoding="utf-8"))
    summary = stages["inject"]["summary"]
    record = {"config": (run_dir / "config.yaml").read_text(encoding="utf-8"),
              "wall_time_s": {k: v.get("wall_time_s") for k, v in stages.items()},
              "train": {k: stages["train"].get(k) for k in ("train_pairs", "global_step", "train_time_s")},
              "inject": {k: summary.get(k) for k in ("pairs", "records", "rejected_items", "per_type",
                                                     "shortcut_audit")},
              "heldout_before": without_details(heldout["before"]),
              "heldout_after": without_details(heldout["after"])}
    if "profile" in stages:
        record["profile"] = stages["profile"]["profile"]
    return record


def stage_conditions(scale: Scale, root: Path, configs: Path, results: Path, only: set[str] | None) -> None:
    todo: list[Condition | None] = [None, *conditions(scale)]
    for c in todo:
        name, extra = ("base", True) if c is None else (c.name, c.extra_eval)
        if only and name not in only:
            continue
        if is_done(name, extra, scale, results):
            print(f"{name}: done (results/{name})")
            continue
        started = time.time()
        run_condition(c, scale, root, configs, results)
        print(f"{name}: {time.time() - started:.0f} s", flush=True)


def stage_compare(scale: Scale, results: Path) -> None:
    """``seapo compare`` per task group over every condition with that group's figures."""
    from seapo.evaluate.compare import compare
    from seapo.pipeline.run import environment

    for group in eval_groups(scale):
        files = sorted(results.glob(f"*/eval-{group}.json"), key=lambda p: p.parent.name != "base")
        if len(files) > 1:
            compare(files, out=results / "compare" / group, verify=False)
    (results / "environment.json").write_text(json.dumps(environment(), indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="all", choices=["data", "tune", "configs", "conditions", "compare",
                                                                      "table", "all"])
    parser.add_argument("--only", nargs="*", help="conditions (run names) to run or evaluate")
    parser.add_argument("--scale", default="study", choices=list(SCALES))
    parser.add_argument("--model", help="policy instead of the scale's (smoke tests: a tiny random model)")
    parser.add_argument("--root", help="working folder (default runs/small_repro; smoke: runs/small_repro-smoke)")
    parser.add_argument("--configs", help="where the configs go (default experiments/small_repro/configs)")
    parser.add_argument("--results", help="where collected figures go (default experiments/small_repro/results)")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    if args.model:
        scale = replace(scale, model=args.model)
    os.chdir(REPO)  # the configs' paths are relative to the repository root
    root = Path(args.root or f"runs/{'small_repro' if args.scale == 'study' else 'small_repro-smoke'}")
    configs = Path(args.configs) if args.configs else HERE / "configs"
    results = Path(args.results) if args.results else HERE / "results"
    only = set(args.only) if args.only else None
    stages = ["data", "tune", "configs", "conditions", "compare", "table"] if args.stage == "all" else [args.stage]
    for stage in stages:
        print(f"== {stage}", flush=True)
        if stage == "data":
            stage_data(scale, root)
        elif stage == "tune":
            results.mkdir(parents=True, exist_ok=True)
            print(f"tune: chose {stage_tune(scale, root, results)['settings']}")
        elif stage == "configs":
            stage_configs(scale, root, configs, results)
        elif stage == "conditions":
            stage_conditions(scale, root, configs, results, only)
        elif stage == "compare":
            stage_compare(scale, results)
        elif stage == "table":
            sys.path.insert(0, str(HERE))
            from table import write_table

            write_table(results, REPO / "docs" / "results" / "small_repro.md" if args.scale == "study"
                        else results / "small_repro.md")


if __name__ == "__main__":
    main()
