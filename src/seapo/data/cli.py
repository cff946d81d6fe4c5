"""``seapo prepare``: a thin CLI over :func:`seapo.data.prepare.prepare`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from seapo.data.prepare import DEFAULT_SOURCE, FORMATS, PrepareConfig, PrepareError, PrepareResult, prepare
from seapo.errors import InputError

# typer shows an Enum's values as the accepted choices in --help.
Format = Enum("Format", {name: name for name in FORMATS}, type=str)  # type: ignore[misc]


def prepare_command(
    source: str = typer.Argument(
        DEFAULT_SOURCE,
        help="A local .json/.jsonl/.parquet/.csv file, a Hub data set id (owner/name), a datasets "
        "builder such as 'parquet' with --data-files, or 'demo' for the packaged demo set.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the normalized records (JSONL)."),
    format: Format = typer.Option(
        "auto", "--format", "-f",
        help="Input layout; 'auto' detects it from the fields of the first rows "
        "(layouts: docs/prepare.md). 'generic' needs --prompt-field and --response-field.",
    ),
    split: str | None = typer.Option(
        None, "--split", "-s",
        help=f"Hub split to read (default 'train_prefs' for {DEFAULT_SOURCE}, else 'train'); "
        "for local files only recorded in the records.",
    ),
    subset: str | None = typer.Option(None, "--subset", help="Hub data set configuration (e.g. 'main')."),
    data_files: list[str] | None = typer.Option(
        None, "--data-files", help="Files for a datasets builder source such as 'parquet' (repeatable)."
    ),
    prompt_field: str | None = typer.Option(
        None, "--prompt-field", help="generic layout: field with the prompt (text or chat messages)."
    ),
    response_field: str | None = typer.Option(
        None, "--response-field", help="generic layout: field with the good response."
    ),
    rejected_field: str | None = typer.Option(
        None, "--rejected-field", help="generic layout: optional field with the source's rejected response."
    ),
    system_field: str | None = typer.Option(
        None, "--system-field", help="generic layout: optional field with a system prompt."
    ),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Where bad, filtered and duplicate rows go (default <out stem>.rejects.jsonl)."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Exit non-zero (and write no records) if any row was rejected."
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="Read at most N input rows."),
    keep_calculations: bool = typer.Option(
        False, "--keep-calculations", help="gsm8k layout: keep the <<a*b=c>> calculator annotations."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar for big inputs."),
) -> None:
    """Normalize a data set into prompt + good-response records (docs/prepare.md).

    Layouts: ultrafeedback, sharegpt_dpo, sharegpt_kto, alpaca, gsm8k, seapo (records),
    generic.

    Bad rows never stop the run: they go to the rejects file with line, field and reason.
    Exits 1 when nothing usable was read, or with --strict when any row was rejected.
    """
    console = Console()
    try:
        config = PrepareConfig(
            format=format.value, split=split, subset=subset,
            data_files=(data_files[0] if len(data_files) == 1 else list(data_files)) if data_files else None,
            prompt_field=prompt_field, response_field=response_field, rejected_field=rejected_field,
            system_field=system_field, rejects=rejects, strict=strict, limit=limit,
            clean_gsm8k=not keep_calculations, progress=progress,
        )
        result = prepare(source, out=out, config=config)
    except PrepareError as exc:
        print_summary(console, exc.result)
        _error(exc)
        raise typer.Exit(1) from exc
    except InputError as exc:
        _error(exc)
        raise typer.Exit(1) from exc
    print_summary(console, result)


def _error(exc: Exception) -> None:
    console = Console(stderr=True)
    console.print("[bold red]error:[/] ", end="")
    console.print(str(exc), markup=False, highlight=False)  # messages hold [brackets], not markup


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
        console.print(f"  line {example['line']}, field '{example['field']}': {example['reason']}",
                      highlight=False, markup=False)
    if result.rejected > len(result.examples):
        console.print(f"  ... {result.rejected - len(result.examples)} more in {result.rejects}",
                      highlight=False)
    if result.hint:
        console.print(f"[yellow]hint:[/] {result.hint}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``seapo prepare`` to the main command."""
    app.command("prepare")(prepare_command)
