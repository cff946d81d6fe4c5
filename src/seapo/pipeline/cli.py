"""``seapo run`` and ``seapo config show``, generated from :class:`~seapo.pipeline.config.RunConfig`."""

from __future__ import annotations

import typer

from seapo.config.cli import config_command
from seapo.pipeline.config import RunConfig, packaged_config

config_app = typer.Typer(help="Inspect run configurations.", no_args_is_help=True)
ALIASES = {"out": ["--out", "-o"]}


def run_pipeline(config: RunConfig) -> None:
    from seapo.pipeline.run import run

    run(config)


def show_config(config: RunConfig) -> None:
    typer.echo(config.to_yaml())


run_command = config_command(
    RunConfig, run_pipeline, aliases=ALIASES, flatten=False, default_file=packaged_config,
    doc="Prepare -> inject -> train -> held-out accuracy -> [evaluate] -> report.md, in one resumable command.\n\n"
        "Without --config: the packaged offline demo on the embedded model. Any setting: --set "
        "inject.injector=rules, --set train.epochs=1 ...")
show_command = config_command(
    RunConfig, show_config, aliases=ALIASES, flatten=False, default_file=packaged_config,
    doc="Print the resolved run config (defaults, file and overrides merged) as YAML.")
config_app.command("show")(show_command)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.add_typer(config_app, name="config")
