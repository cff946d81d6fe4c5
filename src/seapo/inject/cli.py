"""``seapo inject``: generated from :class:`~seapo.inject.pipeline.InjectConfig`."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Optional  # noqa: UP035 - typer needs real Optional[...] annotations

import typer

from seapo.config.cli import config_command
from seapo.errors import NoUsableOutput
from seapo.inject.pipeline import InjectConfig
from seapo.progress import console

PARAMS = [
    inspect.Parameter("records", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path,
                      default=typer.Argument(..., help="Records JSONL written by `seapo prepare`.", exists=True,
                                             dir_okay=False, show_default=False)),
    inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=Path,
                      default=typer.Option(..., "--out", "-o", help="Run directory for the outputs and the resume "
                                                                    "store.", show_default=False)),
    inspect.Parameter("profile", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],  # noqa: UP045
                      default=typer.Option(None, "--profile", help="profile.json of `seapo profile`, for "
                                           "--strategy profile or top (sets strategy_options.profile).",
                                           show_default=False)),
]
ALIASES = {
    "error_types": ["--error-types", "-t"],
    "llm.backend.model": ["--model", "-m"],
    "llm.backend.name": ["--backend"],
    "judge.name": ["--judge"],
    "judge.model": ["--judge-model"],
    "fluency.enabled": ["--fluency/--no-fluency"],
    # Ray Data (docs/ray.md): --ray local|auto|ADDRESS, the pool's settings under --ray-*
    "ray.address": ["--ray"],
    **{f"ray.{key}": [f"--ray-{key.replace('_', '-')}"] for key in ("workers", "cpus_per_worker", "gpus_per_worker")},
    # the gate's own settings carry its name, so --batch-size, --dtype, ... keep meaning the injector's
    **{f"fluency.{key}": [f"--fluency-{key.replace('_', '-')}"]
       for key in ("model", "dtype", "device", "max_drop", "context_tokens", "max_tokens", "batch_size")},
}


def run_inject(config: InjectConfig, records: Path, out: Path, profile: Path | None = None) -> None:
    from seapo.inject.pipeline import inject

    if profile is not None:
        config = config.updated({"strategy_options.profile": str(profile)})

    result = inject(records, out, config)
    summary = result.summary
    for et, counts in summary["per_type"].items():
        console.print(f"[bold]{et:>13}[/]: planned {counts['planned']}, accepted {counts['accepted']}, "
                      f"fallen back {counts['fallen_back']}, rejected {counts['rejected']}, "
                      f"mean difference {counts['mean_difference']}")
    console.print(f"{summary['pairs']} pairs -> {result.pairs_path}  (resumed {summary['resumed_items']} items, "
                  f"{summary['wall_time_s']} s)", highlight=False)
    if summary["pairs"] == 0:
        raise NoUsableOutput(f"no usable negatives; every item and its attempts are in {out / 'rejected.jsonl'}")
    typer.echo(json.dumps({"pairs": str(result.pairs_path), "kto": str(result.kto_path)}))


inject_command = config_command(
    InjectConfig, run_inject, params=PARAMS, aliases=ALIASES,
    doc="Inject one error type per negative, verify every negative, write pairs/KTO/summary (resumable).\n\n"
        "The strategy plans each record's error type(s) first; each planned item is tried with the primary "
        "injector, then the rules fallback. Exit codes: 0 done, 1 no usable negative, 2 bad input.")


def register(app: typer.Typer) -> None:
    app.command("inject")(inject_command)
