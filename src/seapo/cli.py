"""The ``seapo`` command: a thin layer over the Python API.

Each pipeline stage registers its own commands from ``seapo/<stage>/cli.py`` through a
``register(app)`` function, so this file stays a table of contents.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="seapo",
    help="SeaPO: Strategic Error Amplification preference optimisation. "
    "Build verified error-injected preference data, train on it, evaluate the result.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """SeaPO: verified error-injected preference data, preference training and evaluation."""


STAGE_CLIS = (
    "seapo.data.cli",
    "seapo.profile.cli",
    "seapo.inject.cli",
    "seapo.train.cli",
    "seapo.evaluate.cli",
    "seapo.pipeline.cli",
    "seapo.audit.cli",
    "seapo.inspect.cli",
)

for _module in STAGE_CLIS:
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as _exc:  # a stage not built yet; real import errors still raise
        if _exc.name != _module:
            raise


def main() -> None:
    from seapo.config.cli import print_error
    from seapo.errors import SeapoError

    try:
        app(standalone_mode=True)
    except SeapoError as exc:  # commands handle their own; this catches one raised while building them
        print_error(exc)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
