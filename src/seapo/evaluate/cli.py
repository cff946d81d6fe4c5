"""``seapo eval`` (generated from :class:`~seapo.evaluate.config.EvalConfig`) and ``seapo compare``.

Both exit like every seapo command: 0 done, 2 bad input (an unknown task, a bad option value,
lm-eval missing, runs that cannot be compared), printed as one line.
"""

from __future__ import annotations

from pathlib import Path

import typer

from seapo.config.cli import config_command, handle_errors
from seapo.evaluate.config import EvalConfig
from seapo.evaluate.results import EvalResult

ALIASES = {
    "backend.model": ["--model", "-m"],
    "tasks": ["--tasks", "-t"],
    "limit": ["--limit", "-n"],
    "backend.batch_size": ["--batch-size", "-b"],
    "out": ["--out", "-o"],
    "use_cache": ["--use-cache/--no-cache"],
}
EXCLUDE = ["backend.name"]
"""Evaluation needs the transformers backend (its loaded model scores log-likelihoods)."""


def run_eval(config: EvalConfig) -> None:
    from seapo.evaluate.runner import evaluate

    print_result(evaluate(None, config))


def print_result(result: EvalResult) -> None:
    """The scores table, dimensions, skipped tasks and subset / failure warnings."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{result.model['name']} ({result.model['dtype']})")
    for col in ("dimension", "task", "engine", "metric", "score", "n", "cached"):
        table.add_column(col, justify="right" if col in ("score", "n", "cached") else "left")
    for name, res in result.tasks.items():
        for metric, value in res.metrics.items():
            n = f"{res.n}" + (f" of {res.n_available}" if res.subset else "")
            table.add_row(res.dimension, name, str(res.settings.get("engine", "")), metric, f"{100 * value:.1f}", n,
                          str(res.cached))
    console.print(table)
    for dim, value in result.dimensions.items():
        console.print(f"  {dim}: {100 * value:.1f}")
    for name, why in result.skipped.items():
        console.print(f"[yellow]skipped {name}:[/yellow] {why}", highlight=False, markup=True)
    for name, res in result.tasks.items():
        if res.errors:
            console.print(f"[yellow]{name}: generation failed for {res.errors} item(s), scored 0 and not cached "
                          f"(the reason is in predictions/{name}.jsonl)[/yellow]")
    if any(r.subset for r in result.tasks.values()):
        console.print("[yellow]subset evaluation (--limit or groups): "
                      "not comparable to full-benchmark numbers[/yellow]")
    console.print(f"metrics: {result.metrics_path}", highlight=False)


eval_command = config_command(
    EvalConfig, run_eval, aliases=ALIASES, exclude=EXCLUDE,
    doc="Evaluate a model on the paper's five dimensions (docs/evaluation.md).\n\n"
        "lm-evaluation-harness (seapo's eval extra installs it) scores every task it can express; HumanEval runs in "
        "seapo's sandbox. Resumable: per-item results are cached in OUT/cache.sqlite, so an interrupted run "
        "continues where it stopped. Writes OUT/<run>/metrics.json and predictions/<task>.jsonl. Exit codes: "
        "0 done, 2 bad input.")


@handle_errors
def compare_command(
    runs: list[Path] = typer.Argument(..., help="Run folders (with metrics.json) or metrics.json files; "
                                      "the first is the baseline for deltas."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Folder for comparison.md and comparison.png (default: print only)."),
) -> None:
    """Compare evaluation runs: a markdown table (column per model, row per task and dimension, deltas vs the
    first) and a bar chart grouped by dimension. Refuses runs whose engine, lm-eval version or task versions
    differ for a task they share. Exit codes: 0 done, 2 bad input."""
    from rich.console import Console

    from seapo.evaluate.compare import compare

    result = compare(list(runs), out=out)
    print(result.markdown)
    if result.chart_path:
        Console().print(f"table: {result.table_path}\nchart: {result.chart_path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("compare")(compare_command)
