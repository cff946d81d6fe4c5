"""``seapo tune``: choose training settings on a validation split, never on the held-out one.

``tune(TuneConfig(...))`` takes the training input (a pairs file, or a ``seapo run`` config's
``inject/negatives.jsonl``) and the base :class:`~seapo.train.config.TrainConfig`, and:

1. removes the held-out records exactly as ``seapo train`` carves them (``heldout_fraction`` and
   ``seed`` of the base config, by ``record_id``) and writes the rest to ``OUT/training_records.jsonl``:
   nothing downstream ever reads a held-out record;
2. for each point of the grid (every combination of the listed values of any train fields), runs
   ``seapo train`` on that file with ``heldout_fraction = validation_fraction``: train's own split
   (seeded, by record) keeps the validation records out of the fit and scores them before and after
   with train's held-out metrics (:mod:`seapo.train.heldout`);
3. picks the point with the best validation figure (:func:`choose`) and writes ``OUT/tune.json``:
   every point's metrics, the choice, how clearly it beat the others, and the command.

Each point trains in ``OUT/points/<key>/``, its key a hash of its full settings and of the input;
a finished point is recorded in ``tune.json`` at once, so a tune killed at any moment resumes where
it was: finished points are not redone, the interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import itertools
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from seapo.config import SeapoConfig
from seapo.errors import ConfigError, InputError
from seapo.fingerprint import file_digest, stable_hash
from seapo.io import write_json, write_jsonl
from seapo.outputs import folder_lock
from seapo.redact import redact_argv
from seapo.train.config import TrainConfig

FIXED = ("output_dir", "heldout_fraction", "seed", "resume", "data_cache_dir")
"""Train fields a grid may not vary: they decide the splits and the folders (set by the tune)."""
FIXED_PATHS = ("output_dir", "data_cache_dir")
"""Where a point writes, not what it trains: not in its key."""
TUNE_FILE = "tune.json"
RECORDS_FILE = "training_records.jsonl"


class TuneConfig(SeapoConfig):
    """Settings of ``seapo tune``: the grid, the validation split and the selection metric."""

    out: str = Field("runs/tune", description="Tune folder: tune.json, training_records.jsonl, points/<key>/ "
                                              "(one seapo train folder per grid point).")
    pairs: str | None = Field(None, description="Training input, as for seapo train (pairs.jsonl, negatives.jsonl "
                                                "or kto.jsonl); unset with run_config: that run's "
                                                "inject/negatives.jsonl.")
    run_config: str | None = Field(None, description="A seapo run YAML: its train section is the base of every "
                                                     "point (with pairing all, as seapo run trains); train settings "
                                                     "given here override it.",
                                      json_schema_extra={"show_default": "none"})
    train: TrainConfig = Field(default_factory=TrainConfig,
                               description="Base training settings of every point; its heldout_fraction and "
                                           "seed decide the held-out split that the tune removes.")
    grid: dict[str, list[Any]] = Field(
        default_factory=lambda: {"learning_rate": [1e-4, 5e-4, 1e-3], "epochs": [1, 2]},
        description="Train field -> values to try; every combination is one point, run in the order listed "
                    "(set with --set grid.learning_rate=[1e-4,5e-4]). Not: " + ", ".join(FIXED) + ".")
    validation_fraction: float = Field(0.25, gt=0.0, lt=1.0,
                                       description="Fraction of the training records (held-out ones already "
                                                   "removed; by record_id, seeded with train.seed) scored to "
                                                   "choose; the rest trains each point.")
    metric: Literal["implicit_reward", "divergent_span"] = Field(
        "implicit_reward", description="Validation accuracy to maximise after training: implicit_reward "
                                       "(policy-vs-reference log-ratio, what the demo's verdict reads) or "
                                       "divergent_span (mean log-likelihood from the first differing token).")

    @field_validator("grid")
    @classmethod
    def _grid_of_train_fields(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not grid:
            raise ValueError("the grid is empty: give at least one train field and its values")
        for name, values in grid.items():
            if name in FIXED or name not in TrainConfig.model_fields:
                raise ValueError(f"'{name}' cannot be tuned; a grid takes train fields except {', '.join(FIXED)}")
            if not values or len({repr(v) for v in values}) != len(values):
                raise ValueError(f"grid.{name} needs distinct values, got {values}")
        return grid

    def points(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values, in the order listed (the last field varies fastest)."""
        names = list(self.grid)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*self.grid.values())]


@dataclass
class TuneResult:
    """Where tune.json is, and what it holds."""

    path: Path
    points: list[dict[str, Any]]
    choice: dict[str, Any]


def tune(config: TuneConfig | None = None, *, console: Any = None) -> TuneResult:
    """Train every grid point on the fit part of the training records, score the validation part,
    choose (:func:`choose`) and write ``tune.json`` (module docstring). Resumable; one tune per folder."""
    cfg = config or TuneConfig()
    pairs, base = _inputs(cfg)
    grid = [(settings, _point_config(base, settings, cfg.validation_fraction)) for settings in cfg.points()]
    out = Path(cfg.out)
    with folder_lock(out):
        records, heldout_records = write_training_records(pairs, base, out / RECORDS_FILE)
        digest = file_digest(records)
        path = out / TUNE_FILE
        done = {p["key"]: p for p in _read_points(path)}
        head = {"command": redact_argv(sys.argv), "config": cfg.record(), "input": str(pairs),
                "heldout": {"fraction": base.heldout_fraction, "seed": base.seed, "records_removed": heldout_records},
                "training_records": {"path": str(records), "sha256": digest}, "metric": cfg.metric}
        points: list[dict[str, Any]] = []
        for index, (settings, point_cfg) in enumerate(grid):
            key = stable_hash({"train": point_cfg.model_dump(mode="json", exclude=set(FIXED_PATHS)), "input": digest})
            if key not in done:
                # One data cache for every point: points of the same rows (all but the steps differ) tokenize
                # them and run the reference over them once.
                point_cfg = point_cfg.updated(output_dir=str(out / "points" / key),
                                              data_cache_dir=point_cfg.data_cache_dir or str(out / "data-cache"))
                done[key] = _run_point(records, point_cfg, key, console)
            points.append({**done[key], "index": index, "settings": settings})
            # Written after every point, with the finished points not reached yet: a kill loses nothing.
            write_json(path, {**head, "points": points, "choice": None, "other_points": _others(done, points)})
        choice = choose(points, cfg.metric, seed=base.seed)
        write_json(path, {**head, "points": points, "choice": choice, "other_points": _others(done, points)})
    _print(console, points, choice, cfg.metric)
    return TuneResult(path, points, choice)


def _inputs(cfg: TuneConfig) -> tuple[Path, TrainConfig]:
    """The training input and the base train config: the run config's when given, with the train
    settings set in this config on top."""
    base, pairs = cfg.train, cfg.pairs
    if cfg.run_config is not None:
        from seapo.pipeline.config import load_run_config

        run = load_run_config(cfg.run_config)
        given = {name: getattr(cfg.train, name) for name in cfg.train.model_fields_set}
        base = run.train.updated(pairing="all", **given)
        pairs = pairs or str(Path(run.out) / "inject" / "negatives.jsonl")
    if pairs is None:
        raise ConfigError("give the training input (pairs) or a run config (run_config)", field="pairs")
    if not Path(pairs).is_file():
        raise InputError("training input not found" + (" (run the run's inject stage first: seapo run)"
                                                       if cfg.run_config and not cfg.pairs else ""), path=pairs)
    return Path(pairs), base


def _point_config(base: TrainConfig, settings: dict[str, Any], validation_fraction: float) -> TrainConfig:
    """One point's train config: the base with the point's values, validation as train's held-out split."""
    try:
        # heldout_pairs: those files are held out (their records removed in write_training_records), so a
        # point never scores them: the choice reads the validation split alone.
        return base.updated(settings, heldout_fraction=validation_fraction, heldout_pairs=[], resume=True,
                            merge=False)
    except ConfigError as exc:
        raise ConfigError(f"grid point {settings}: {exc.reason}", field=f"grid.{exc.field}") from None


def write_training_records(pairs: Path, base: TrainConfig, dest: Path) -> tuple[Path, int]:
    """``dest``: the input's records less the held-out ones (``seapo train``'s split, by
    :func:`~seapo.train.data.split_heldout` with the base config's fraction and seed, and the records
    of the base config's ``heldout_pairs`` files), and how many records were held out."""
    from seapo.train.data import load_preferences, preference_rows, split_heldout

    loaded = load_preferences(pairs)
    train_groups, held_groups = split_heldout(loaded.groups, base.heldout_fraction, base.seed)
    given = {g.record_id for path in base.heldout_pairs for g in load_preferences(path).groups}
    held = {g.record_id for g in held_groups} | (given & {g.record_id for g in train_groups})
    write_jsonl(dest, preference_rows([g for g in train_groups if g.record_id not in given], loaded.layout))
    return dest, len(held)


def _run_point(records: Path, cfg: TrainConfig, key: str, console: Any) -> dict[str, Any]:
    """Train one point; its validation figures (overall, and each pair's margins for the paired
    comparison of :func:`choose`). Its checkpoints are removed once it is recorded."""
    import json

    from seapo.train.trainer import train

    result = train(records, cfg, console=console)
    if result.heldout_after is None:
        raise InputError(f"the validation split is empty: validation_fraction {cfg.heldout_fraction} of these "
                         "training records leaves none to score (more records or a larger fraction)",
                         path=str(records))
    details = json.loads(Path(result.heldout_path).read_text())["after"]["details"]
    shutil.rmtree(Path(cfg.output_dir) / "checkpoints", ignore_errors=True)
    return {"key": key, "dir": cfg.output_dir, "global_step": result.global_step,
            "fit_pairs": result.train_pairs, "train_time_s": result.train_time_s,
            "validation": {"before": _overall(result.heldout_before), "after": _overall(result.heldout_after)},
            "pairs": [{k: d[k] for k in ("id", "record_id", "implicit_reward_margin", "divergent_span_margin")}
                      for d in details]}


def _overall(figures: dict[str, Any] | None) -> dict[str, Any]:
    return (figures or {}).get("overall") or {}


def _others(done: dict[str, dict[str, Any]], points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished points outside ``points`` (of a longer or earlier grid): kept, so they are never redone."""
    placed = {p["key"] for p in points}
    return [p for key, p in done.items() if key not in placed]


def _read_points(path: Path) -> list[dict[str, Any]]:
    """Every finished point tune.json holds."""
    if not path.is_file():
        return []
    import json

    try:
        data = json.loads(path.read_text())
        return data["points"] + data.get("other_points", [])
    except (ValueError, KeyError, TypeError):
        raise InputError("not a tune.json this seapo can resume; remove it or choose another --out",
                         path=str(path)) from None


def choose(points: list[dict[str, Any]], metric: str, *, seed: int = 0) -> dict[str, Any]:
    """The point with the highest validation ``metric`` accuracy after training; an exact tie goes
    to the higher mean margin, then to the earlier grid point.

    Validation sets are small, so the choice also says how clearly it won: for every other point,
    the paired difference in accuracy (chosen minus it, pair by pair, 95% bootstrap CI over
    validation records). ``separated`` is true only when every such interval lies above 0; the
    points it does not separate from are listed in ``not_separated``: the choice is the best
    estimate, but not shown better than those.
    """
    from seapo.train.heldout import bootstrap_ci

    def score(p: dict[str, Any]) -> tuple[float, float]:
        m = p["validation"]["after"].get(metric) or {}
        return (m.get("accuracy") if m.get("accuracy") is not None else -1.0,
                m.get("mean_margin") if m.get("mean_margin") is not None else -float("inf"))

    best = max(points, key=score)  # max keeps the first of equal scores: the earlier grid point

    def wins(p: dict[str, Any]) -> dict[str, tuple[float, str]]:
        return {d["id"]: (1.0 if d[f"{metric}_margin"] > 0 else 0.0 if d[f"{metric}_margin"] < 0 else 0.5,
                          d["record_id"] or d["id"]) for d in p["pairs"] if d[f"{metric}_margin"] is not None}

    chosen = wins(best)
    versus = []
    for p in points:
        if p is best:
            continue
        other = wins(p)
        common = [i for i in chosen if i in other]
        diffs = [chosen[i][0] - other[i][0] for i in common]
        ci = bootstrap_ci(diffs, [chosen[i][1] for i in common], seed=seed)
        versus.append({"index": p["index"], "settings": p["settings"],
                       "accuracy_delta": sum(diffs) / len(diffs) if diffs else None, "accuracy_delta_ci": ci,
                       "separated": bool(ci and ci[0] > 0)})
    figures = best["validation"]["after"].get(metric) or {}
    return {"index": best["index"], "settings": best["settings"], "metric": metric,
            "accuracy": figures.get("accuracy"), "accuracy_ci": figures.get("accuracy_ci"),
            "mean_margin": figures.get("mean_margin"), "validation_pairs": figures.get("n"),
            "separated": all(v["separated"] for v in versus),
            "not_separated": [v["settings"] for v in versus if not v["separated"]], "versus": versus}


def _print(console: Any, points: list[dict[str, Any]], choice: dict[str, Any], metric: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from seapo.train.heldout import format_figure

    console = console or Console(stderr=True)
    table = Table(title=f"seapo tune: validation {metric} accuracy after training (95% CI over records)")
    for col in ("#", "settings", "steps", f"{metric} acc.", "mean margin", "divergent-span acc. change"):
        table.add_column(col)
    for p in points:
        after = p["validation"]["after"]
        m, change = after.get(metric) or {}, ((after.get("change") or {}).get("divergent_span") or {})
        table.add_row(("* " if p["index"] == choice["index"] else "") + str(p["index"]),
                      ", ".join(f"{k}={v}" for k, v in p["settings"].items()), str(p["global_step"]),
                      format_figure(m.get("accuracy"), m.get("accuracy_ci")),
                      format_figure(m.get("mean_margin"), signed=True),
                      format_figure(change.get("accuracy_delta"), change.get("accuracy_delta_ci"), signed=True))
    console.print(table)
    shown = ", ".join(f"{k}={v}" for k, v in choice["settings"].items())
    line = f"chosen: {shown} ({metric} accuracy {format_figure(choice['accuracy'], choice['accuracy_ci'])} " \
           f"over {choice['validation_pairs']} validation pairs)"
    if choice["not_separated"]:
        line += f"; not shown better than {len(choice['not_separated'])} other point(s) at this validation size"
    console.print(line, highlight=False)
