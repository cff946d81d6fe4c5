"""``python -m seapo.train PAIRS ...``: the ``seapo train`` command, for ``accelerate launch -m``.

Only ``train``: ``seapo.train.cli`` also registers ``tune``, and two commands would turn this module
into a group that wants a command name before PAIRS.
"""

import typer

from seapo.train.cli import train_command

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
app.command()(train_command)

if __name__ == "__main__":
    app()
