"""``seapo run`` and ``seapo config show``."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

config_app = typer.Typer(help="Inspect run configurations.", no_args_is_help=True)


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"'{pair}' is not KEY=VALUE (e.g. train.epochs=1)")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run_command(
    config: Path | None = typer.Option(None, "--config", "-c", help="Run config YAML (default: the packaged "
                                                                     "offline demo on the embedded model)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (overrides `out` in the config)."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set train.epochs=1 "
                                                     "--set inject.injector=rules (repeatable)."),
) -> None:
    """Prepare -> inject -> train -> held-out accuracy -> report.md, in one resumable command."""
    from seapo.pipeline.config import load_run_config
    from seapo.pipeline.run import run

    resolved = load_run_config(config, _overrides(set_))
    run(resolved, out=out)


def show_command(
    config: Path | None = typer.Option(None, "--config", "-c", help="Run config YAML (default: the demo)."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set train.epochs=1."),
) -> None:
    """Print the resolved config (defaults, file and overrides merged) as YAML."""
    from seapo.pipeline.config import load_run_config

    typer.echo(load_run_config(config, _overrides(set_)).to_yaml())


config_app.command("show")(show_command)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.add_typer(config_app, name="config")
