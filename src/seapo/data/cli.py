"""``seapo prepare``: generated from :class:`~seapo.data.prepare.PrepareConfig`."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from seapo.config.cli import config_command
from seapo.data.prepare import PrepareConfig, PrepareError, PrepareResult
from seapo.data.split import SplitConfig

PARAMS = [inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=Path,
                            default=typer.Option(..., "--out", "-o", help="Where to write the normalized records "
                                                                          "(JSONL).", show_default=False))]
ALIASES = {
    "format": ["--format", "-f"],
    "split": ["--split", "-s"],
    "limit": ["--limit", "-n"],
    "clean_gsm8k": ["--clean-gsm8k/--keep-calculations"],
}


def run_prepare(config: PrepareConfig, out: Path) -> None:
    from seapo.data.prepare import prepare

    console = Console()
    try:
        result = prepare(out=out, config=config)
    except PrepareError as exc:
        print_summary(console, exc.result)
        raise
    print_summary(console, result)


def print_summary(console: Console, result: PrepareResult) -> None:
    """Counts table, then where the files are and the first rejects."""
    console.print(Text.assemble((result.dataset, "bold"),
                                f" (split {result.split}, layout {result.format or '?'})"))
    table = Table(show_header=True)
    for name in ("read", "kept", "rejected", "filtered", "duplicates"):
        table.add_column(name, justify="right")
    table.add_row(*(str(getattr(result, name)) for name in ("read", "kept", "rejected", "filtered",
                                                             "duplicates")))
    console.print(table)
    if result.written:
        console.print(f"records: {result.out}", highlight=False)
    console.print(f"rejects: {result.rejects}", highlight=False)
    if result.duplicate_prompts:
        n = sum(len(ids) for ids in result.duplicate_prompt_ids)
        console.print(f"{result.duplicate_prompts} prompts have several responses ({n} records, all kept)")
    for example in result.examples:
        lines = f"lines {example['line']}-{example['end_line']}" if "end_line" in example \
            else f"line {example['line']}"
        console.print(f"  {lines}, field '{example['field']}': {example['reason']}",
                      highlight=False, markup=False)
    if result.rejected > len(result.examples):
        console.print(f"  ... {result.rejected - len(result.examples)} more in {result.rejects}",
                      highlight=False)
    if result.hint:
        console.print(f"[yellow]hint:[/] {result.hint}", highlight=False)


prepare_command = config_command(
    PrepareConfig, run_prepare, params=PARAMS, aliases=ALIASES,
    positional={"source": "A local .json/.jsonl/.parquet/.csv file (the text ones also gzipped), a Hub data "
                          "set id (owner/name), a datasets builder such as 'parquet' with --data-files, or "
                          "'demo' for the packaged demo set "
                          "[default: HuggingFaceH4/ultrafeedback_binarized]."},
    doc="Normalize a data set into prompt + good-response records (docs/prepare.md).\n\n"
        "Layouts: ultrafeedback, sharegpt_dpo, sharegpt_kto, alpaca, gsm8k, seapo (records), generic. Bad rows "
        "never stop the run: they go to the rejects file with file, line, field and reason. Exit codes: 0 done, "
        "1 nothing usable was read, 2 bad input (an unreadable file, an unknown layout, a bad option, or "
        "--strict and a row was rejected).")


SPLIT_PARAMS = [
    inspect.Parameter("records", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path,
                      default=typer.Argument(..., help="Records JSONL written by `seapo prepare`.", exists=True,
                                             dir_okay=False, show_default=False)),
    inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=Path,
                      default=typer.Option(..., "--out", "-o", help="Folder for <part>.jsonl and split.json.",
                                           show_default=False)),
]


def run_split(config: SplitConfig, records: Path, out: Path) -> None:
    from seapo.data.split import split_records

    result = split_records(records, out, config)
    for name, path in result.paths.items():
        typer.echo(f"{name}: {result.counts[name]} records -> {path}")


split_command = config_command(
    SplitConfig, run_split, params=SPLIT_PARAMS,
    doc="Split records into seeded parts by record id (e.g. train / validation / heldout; docs/prepare.md).\n\n"
        "A record's part depends only on its id, the seed and the fractions, so every run that splits the same "
        "way puts it in the same part. Example: seapo split records.jsonl --out parts --set parts.heldout=0.2 "
        "--set parts.validation=0.1.")


def register(app: typer.Typer) -> None:
    """Add ``seapo prepare`` and ``seapo split`` to the main command."""
    app.command("prepare")(prepare_command)
    app.command("split")(split_command)
