"""``seapo train``: a thin CLI over :func:`seapo.train.trainer.train`.

Every :class:`~seapo.train.config.TrainConfig` field is an option (its documentation is the
``--help`` text), generated from the config class (:mod:`seapo.config.cli`) so the two can
never drift apart. Values: defaults < ``--config FILE.yaml`` < options < ``--set``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from seapo.config.cli import config_command
from seapo.train.config import TrainConfig
from seapo.train.tune import TuneConfig

if TYPE_CHECKING:
    from seapo.train.trainer import TrainResult

ALIASES = {"output_dir": ["--out", "-o", "--output-dir"], "model": ["--model", "-m"]}
PARAMS = [inspect.Parameter("pairs", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path,
                            default=typer.Argument(..., help="Training input: pairs.jsonl, negatives.jsonl or "
                                                             "kto.jsonl from `seapo inject` (docs/formats.md).",
                                                   show_default=False))]


def run_train(cfg: TrainConfig, pairs: Path) -> None:
    from rich.console import Console

    from seapo.train.trainer import train

    console = Console(stderr=True)
    result = train(pairs, cfg, console=console)
    if result.heldout_before is not None:  # only the main process has these
        _print_heldout(console, result)
    console.print(f"adapter: {result.adapter_dir}\nmerged:  {result.merged_dir}\nlog:     {result.log_path}\n"
                  f"plot:    {result.plot_path}\nsteps:   {result.global_step}  train time {result.train_time_s:.1f}s"
                  f"  wall time {result.wall_time_s:.1f}s")


def _print_heldout(console: Any, result: TrainResult) -> None:
    from rich.table import Table

    from seapo.train.heldout import HELDOUT_COLUMNS, effect_verdict, heldout_rows

    table = Table(title="held-out: positive above negative (95% CI over records in brackets)")
    for col in HELDOUT_COLUMNS:
        table.add_column(col)
    for row in heldout_rows(result.heldout_before, result.heldout_after):  # called only when before exists
        table.add_row(*row)
    console.print(table)
    verdict = effect_verdict(result.heldout_after)
    if verdict:
        console.print(verdict, highlight=False)


train_command = config_command(
    TrainConfig, run_train, params=PARAMS, aliases=ALIASES,
    doc="Preference-train a model (KTO by default; DPO, IPO, SimPO, ORPO) on injected pairs, with held-out "
        "preference accuracy before and after. Every option can also be set in a YAML file given with --config.")


def run_tune(cfg: TuneConfig) -> None:
    from rich.console import Console

    from seapo.train.tune import tune

    result = tune(cfg, console=Console(stderr=True))
    typer.echo(str(result.path))


tune_command = config_command(
    TuneConfig, run_tune, aliases={"out": ["--out", "-o"], "train.model": ["--model", "-m"]},
    positional={"pairs": "Training input (pairs.jsonl, negatives.jsonl or kto.jsonl); omit with --run-config "
                         "to use that run's inject/negatives.jsonl."},
    exclude=("train.output_dir", "train.resume"),
    doc="Choose training settings on a validation split: train every grid point (--set grid.learning_rate=[...]) "
        "on the training records less a validation part, score the validation part with the held-out metrics, "
        "write tune.json with the choice. The held-out records are removed first and never read; resumable.")


def register(app: typer.Typer) -> None:
    """Add ``seapo train`` and ``seapo tune`` to the main CLI."""
    app.command("train")(train_command)
    app.command("tune")(tune_command)
