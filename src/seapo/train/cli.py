"""``seapo train``: a thin CLI over :func:`seapo.train.trainer.train`.

Every :class:`~seapo.train.config.TrainConfig` field is an option (its documentation is the
``--help`` text), generated from the config class so the two can never drift apart. Values:
defaults < ``--config FILE.yaml`` < options given on the command line.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any, Optional  # noqa: UP035 - typer needs real Optional[...] annotations

import typer

from seapo.train.config import TrainConfig

ALIASES = {"output_dir": ["--out", "-o", "--output-dir"], "model": ["--model", "-m"]}


def _option_type(annotation: Any) -> type:
    """The plain type typer should parse (Literal -> str, X | None -> X)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return str
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _option_type(inner[0])
    return annotation


def _parameters() -> list[inspect.Parameter]:
    params = [
        inspect.Parameter("pairs", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path,
                          default=typer.Argument(..., help="Training input: pairs.jsonl, negatives.jsonl or "
                                                           "kto.jsonl from `seapo inject` (docs/formats.md).",
                                                 show_default=False)),
        inspect.Parameter("config_file", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],  # noqa: UP045
                          default=typer.Option(None, "--config", "-c",
                                               help="YAML file of TrainConfig fields; options given here "
                                                    "override it.")),
    ]
    for name, field in TrainConfig.model_fields.items():
        kind = _option_type(field.annotation)
        flag = "--" + name.replace("_", "-")
        help_text = field.description or ""
        if typing.get_origin(field.annotation) is typing.Literal:
            help_text += f" Choices: {', '.join(map(str, typing.get_args(field.annotation)))}."
        help_text += f" [default: {field.default if field.default is not None else 'auto'}]"
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else ALIASES.get(name, [flag])
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[kind],  # noqa: UP045
                                        default=typer.Option(None, *decls, help=help_text, show_default=False)))
    return params


def train_command(**kwargs: Any) -> None:
    """Train a model to prefer the original responses over their error-injected copies."""
    from rich.console import Console

    from seapo.errors import SeapoError
    from seapo.train.trainer import train

    console = Console(stderr=True)
    pairs, config_file = kwargs.pop("pairs"), kwargs.pop("config_file")
    try:
        cfg = TrainConfig.from_sources(config_file, **kwargs)
        result = train(pairs, cfg, console=console)
    except (SeapoError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    if result.heldout_before is not None:  # only the main process has these
        _print_heldout(console, result)
    console.print(f"adapter: {result.adapter_dir}\nmerged:  {result.merged_dir}\nlog:     {result.log_path}\n"
                  f"plot:    {result.plot_path}\nsteps:   {result.global_step}  train time {result.train_time_s:.1f}s"
                  f"  wall time {result.wall_time_s:.1f}s")


def _print_heldout(console: Any, result: Any) -> None:
    from rich.table import Table

    table = Table(title="held-out preference accuracy (positive scored above negative)")
    for col in ("error type", "n", "before", "after", "margin before", "margin after"):
        table.add_column(col)
    before, after = result.heldout_before, result.heldout_after or {}
    keys = ["overall", *before["per_error_type"]]
    for key in keys:
        b = before["overall"] if key == "overall" else before["per_error_type"][key]
        a = (after.get("overall") if key == "overall" else after.get("per_error_type", {}).get(key)) or {}

        def fmt(v: Any) -> str:
            return "-" if v is None else f"{v:.3f}"
        table.add_row(key, str(b["n"]), fmt(b["accuracy"]), fmt(a.get("accuracy")), fmt(b["mean_margin"]),
                      fmt(a.get("mean_margin")))
    console.print(table)


train_command.__signature__ = inspect.Signature(_parameters())  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    """Add ``seapo train`` to the main CLI."""
    app.command("train", help="Preference-train a model (KTO by default; DPO, IPO, SimPO, ORPO) on injected "
                              "pairs, with held-out preference accuracy before and after. Every option can also "
                              "be set in a YAML file given with --config.")(train_command)
