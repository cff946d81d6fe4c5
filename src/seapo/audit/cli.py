"""``seapo audit``: generated from :class:`~seapo.audit.config.AuditConfig`."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional  # noqa: UP035 - typer needs real Optional[...] annotations

import typer

from seapo.audit.config import AuditConfig
from seapo.config.cli import config_command
from seapo.progress import console

PARAMS = [
    inspect.Parameter("pairs", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path,
                      default=typer.Argument(..., help="Pairs file: seapo's pairs.jsonl, or any chosen/rejected "
                                             "layout `seapo prepare` reads (LLaMA-Factory, UltraFeedback, TRL).",
                                             dir_okay=False, show_default=False)),
    inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],  # noqa: UP045
                      default=typer.Option(None, "--out", "-o", help="Write the report as JSON here (unusable "
                                           "rows to <stem>.rejects.jsonl beside it).", show_default=False)),
    inspect.Parameter("format", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                      default=typer.Option("auto", "--format", "-f", help="Layout of PAIRS: auto or a layout of "
                                           "`seapo prepare`.")),
]


def rejects_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.rejects.jsonl")


def run_audit(config: AuditConfig, pairs: Path, out: Path | None, format: str) -> None:
    from seapo.audit.read import audit_file
    from seapo.audit.render import ngram_lines, rich_table
    from seapo.io import write_json, write_jsonl

    report, pairs_file = audit_file(pairs, config, format=format)
    data = {"file": pairs_file.path, "layout": pairs_file.layout, "rows_read": pairs_file.read,
            "unusable_rows": len(pairs_file.rejects), **report.to_dict()}
    console.print(rich_table(data, title=f"shortcut audit of {pairs_file.path} ({pairs_file.layout} layout, "
                                         f"{report.pairs} pairs, {report.records} records)"))
    for line in ngram_lines(data):
        console.print(line, highlight=False, markup=False)
    for warning in report.warnings:
        console.print(f"[bold red]warning[/]: {warning}", highlight=False)
    if pairs_file.rejects:
        console.print(f"{len(pairs_file.rejects)} of {pairs_file.read} rows unusable, first:", highlight=False)
        for reject in pairs_file.rejects[:5]:
            console.print(f"  {reject['file']}:{reject['line']}: field '{reject['field']}': {reject['reason']}",
                          highlight=False, markup=False)
    if out is not None:
        if pairs_file.rejects:
            data["rejects"] = str(rejects_path(out))
            write_jsonl(rejects_path(out), pairs_file.rejects)
        write_json(out, data)
        console.print(f"report -> {out}", highlight=False)


audit_command = config_command(
    AuditConfig, run_audit, params=PARAMS, exclude=("shortcut_audit",),
    doc="Shortcut audit of a pairs file: can a word n-gram classifier tell negatives from positives?\n\n"
        "Per error type and overall: pairwise accuracy (0.5 = no surface cue) with a 95% interval, length "
        "statistics, the most predictive n-grams, a warning above --warn-above (docs/audit.md). Exit codes: "
        "0 done, 2 bad input.")


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_command)
