"""``seapo eval`` and ``seapo compare``: thin CLIs over :func:`seapo.evaluate.runner.evaluate`
and :func:`seapo.evaluate.compare.compare`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from seapo.errors import SeapoError
from seapo.evaluate.tasks import SUITES, available_tasks


def eval_command(
    model: str = typer.Option(
        ..., "--model", "-m",
        help="Model to evaluate: 'embedded', a Hugging Face model folder (e.g. the merged output of "
        "`seapo train`), a .gguf file or a Hub id.",
    ),
    suite: str = typer.Option("paper", "--suite", help=f"Task suite: {', '.join(SUITES)}."),
    tasks: str | None = typer.Option(
        None, "--tasks", "-t",
        help=f"Comma-separated tasks instead of the suite ({', '.join(available_tasks())}, or a task .yaml). "
        "'name:group' restricts a task to groups, e.g. 'mmlu:anatomy,mmlu:virology,bbh:navigate'.",
    ),
    limit: int | None = typer.Option(
        None, "--limit", "-n", min=1,
        help="First N items of each group (MMLU subject, BBH task) or task: a deterministic subset, "
        "reported as such.",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir",
        help="Folder with local eval data (e.g. ../shared/data/eval); only local files are read then. "
        "Default: the Hugging Face Hub.",
    ),
    out: Path = typer.Option(Path("runs/eval"), "--out", "-o",
                             help="Output folder: cache.sqlite + <run>/metrics.json + predictions."),
    run_name: str | None = typer.Option(None, "--run-name", help="Sub-folder for this model (default: from --model)."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", min=1, help="Rows per forward pass / generate call."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (bf16 where fast, else fp32), bf16, fp16, fp32."),
    device: str | None = typer.Option(None, "--device", help="cuda, cuda:1, cpu (default: CUDA when present)."),
    engine: str = typer.Option(
        "auto", "--engine",
        help="lm-eval (lm-evaluation-harness's task YAMLs, answer filters and metrics for TruthfulQA MC, "
        "MMLU, GSM8K, BBH, MATH; HumanEval always runs in seapo's sandbox), native (seapo's own "
        "implementation, no lm-eval needed) or auto (lm-eval where it is installed and can run the task).",
    ),
    lm_backend: str = typer.Option(
        "seapo", "--lm-backend",
        help="Model under lm-eval: seapo (seapo's batched, prefix-cached scorer) or hf (lm-eval's own HFLM).",
    ),
    num_samples: int | None = typer.Option(
        None, "--num-samples", min=0,
        help="Sampled completions per HumanEval problem for pass@10 (task default 20; 0: pass@1 only).",
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (on a busy shared CPU, 1 is often fastest)."
    ),
    chunk_size: int = typer.Option(64, "--chunk-size", min=1,
                                   help="Items computed between cache commits (work lost on interruption)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute items even if cached results exist."),
    seed: int = typer.Option(0, "--seed", help="Seed of sampled generations."),
) -> None:
    """Evaluate a model on the paper's five dimensions (docs/evaluation.md).

    Resumable: per-item results are cached in OUT/cache.sqlite, so an interrupted run
    continues where it stopped. Writes OUT/<run>/metrics.json and predictions/<task>.jsonl.
    """
    from seapo.evaluate.runner import EvalConfig, evaluate

    console = Console()
    if engine not in ("auto", "native", "lm-eval"):
        raise typer.BadParameter("use 'auto', 'native' or 'lm-eval'", param_hint="--engine")
    if lm_backend not in ("seapo", "hf"):
        raise typer.BadParameter("use 'seapo' or 'hf'", param_hint="--lm-backend")
    config = EvalConfig(
        suite=suite, tasks=[t for t in tasks.split(",") if t.strip()] if tasks else None, limit=limit,
        data_dir=str(data_dir) if data_dir else None, out=str(out), run_name=run_name, batch_size=batch_size,
        dtype=dtype, device=device, engine=engine, lm_backend=lm_backend,  # type: ignore[arg-type]
        num_samples=num_samples, threads=threads,  # type: ignore[arg-type]
        use_cache=not no_cache, seed=seed, chunk_size=chunk_size,
    )
    try:
        result = evaluate(model, config)
    except SeapoError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table(title=f"{result.model['name']} ({result.model['dtype']})")
    for col in ("dimension", "task", "metric", "score", "n", "cached"):
        table.add_column(col, justify="right" if col in ("score", "n", "cached") else "left")
    for name, res in result.tasks.items():
        for metric, value in res.metrics.items():
            n = f"{res.n}" + (f" of {res.n_available}" if res.subset else "")
            table.add_row(res.dimension, name, metric, f"{100 * value:.1f}", n, str(res.cached))
    console.print(table)
    for dim, value in result.dimensions.items():
        console.print(f"  {dim}: {100 * value:.1f}")
    for name, why in result.skipped.items():
        console.print(f"[yellow]skipped {name}:[/yellow] {why}")
    if any(r.subset for r in result.tasks.values()):
        console.print("[yellow]subset evaluation (--limit or groups): "
                      "not comparable to full-benchmark numbers[/yellow]")
    console.print(f"metrics: {result.metrics_path}")


def compare_command(
    runs: list[Path] = typer.Argument(..., help="Run folders (with metrics.json) or metrics.json files; "
                                      "the first is the baseline for deltas."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Folder for comparison.md and comparison.png (default: print only)."),
) -> None:
    """Compare evaluation runs: a markdown table (column per model, row per task and dimension,
    deltas vs the first) and a bar chart grouped by dimension."""
    from seapo.evaluate.compare import compare

    console = Console()
    try:
        result = compare(list(runs), out=out)
    except SeapoError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    print(result.markdown)
    if result.chart_path:
        console.print(f"table: {result.table_path}\nchart: {result.chart_path}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("compare")(compare_command)
