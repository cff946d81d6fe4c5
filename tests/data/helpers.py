"""Small helpers for the data tests: write input files, run the CLI, read outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from seapo.data.cli import register


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def cli_app() -> typer.Typer:
    """The stage's commands on their own app (as seapo.cli registers them)."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a callback keeps `prepare` a subcommand, as in the real CLI
        """seapo (test)."""

    register(app)
    return app


def run_cli(*args: str):
    # Wide terminal so rich does not wrap the messages the tests look for.
    return CliRunner().invoke(cli_app(), ["prepare", *map(str, args)], env={"COLUMNS": "240"})
