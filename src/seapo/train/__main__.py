"""``python -m seapo.train PAIRS ...``: the ``seapo train`` command, for ``accelerate launch -m``."""

import typer

from seapo.train.cli import register

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
register(app)

if __name__ == "__main__":
    app()
