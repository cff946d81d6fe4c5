"""``seapo inspect``: generated from :class:`~seapo.inspect.config.InspectConfig`."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer

from seapo.config.cli import config_command
from seapo.inspect.config import InspectConfig
from seapo.progress import console

PARAMS = [
    inspect.Parameter("run_dir", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path,
                      default=typer.Argument(..., help="A `seapo run` directory or a `seapo inject --out` folder.",
                                             file_okay=False, show_default=False)),
]
ALIASES = {"out": ["--out", "-o"]}


def run_inspect(config: InspectConfig, run_dir: Path) -> None:
    from seapo.inspect.run import inspect_run

    path = inspect_run(run_dir, config)
    console.print(f"inspector -> {path} (open it in a browser; it needs no server or network)", highlight=False)


inspect_command = config_command(
    InspectConfig, run_inspect, params=PARAMS, aliases=ALIASES,
    doc="Write one self-contained HTML file to browse a run: every pair with its injected error highlighted, "
        "rejected items and input rejects with their reasons, and the run's charts (docs/inspect.md).\n\n"
        "Exit codes: 0 done, 2 bad input.")


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_command)
