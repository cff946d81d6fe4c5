"""One progress-bar style for every long stage: items done, rate, ETA."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


class RateColumn(TextColumn):
    """Items per second (rich's own speed column is for bytes)."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # noqa: ANN001 - rich's signature
        speed = task.finished_speed or task.speed
        return "" if speed is None else f"{speed:.2f} it/s"


def make_progress(*, disable: bool | None = None) -> Progress:
    """A rich progress bar on stderr; off when stderr is not a terminal unless forced on."""
    if disable is None:
        disable = not sys.stderr.isatty()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
    )
