"""``seapo inject``: a thin CLI over :func:`seapo.inject.pipeline.inject`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from seapo.progress import console


def inject_command(
    records: Path = typer.Argument(..., help="Records JSONL written by `seapo prepare`.", exists=True,
                                   dir_okay=False),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory for the outputs and the resume store."),
    strategy: str = typer.Option("mixed", help="single (one named type), all (a pair per type) or mixed "
                                              "(one type drawn per record, seeded; the paper's strategy)."),
    error_types: str = typer.Option("all", "--error-types", "-t",
                                    help="Comma-separated: correctness,logic,hallucination, or all."),
    injector: str = typer.Option("llm", help="llm (an injector model, the paper's method) or rules "
                                            "(model-free, deterministic, fast)."),
    model: str = typer.Option("embedded", help="Injector model: embedded, a folder, a .gguf file or a Hub id "
                                               "(the paper: Qwen/Qwen2.5-7B-Instruct)."),
    backend: str = typer.Option("transformers", help="LLM backend."),
    batch_size: int = typer.Option(16, help="Prompts generated together (left-padded batches)."),
    max_new_tokens: int = typer.Option(1024, help="Token limit of a revised response."),
    dtype: str = typer.Option("auto", help="auto, bf16, fp16 or fp32."),
    device: str | None = typer.Option(None, help="cuda, cuda:N or cpu (default: CUDA when present)."),
    max_attempts: int = typer.Option(2, help="Tries with the primary injector before falling back."),
    fallback: str = typer.Option("rules", help="rules (rules injector stands in for a failed LLM item) or "
                                               "none (reject it)."),
    min_difference: float = typer.Option(0.003, help="Smallest normalized token difference that counts as "
                                                     "material (see docs/formats.md)."),
    seed: int = typer.Option(0, help="Seed of the mixed draw and of the rules injector."),
    limit: int | None = typer.Option(None, help="Use only the first N records."),
) -> None:
    """Inject one error type per negative, verify every negative, write pairs/KTO/summary (resumable)."""
    from seapo.inject.llm import LLMInjectorConfig
    from seapo.inject.pipeline import InjectConfig, inject
    from seapo.inject.verify import VerifierConfig

    config = InjectConfig(
        strategy=strategy, error_types=error_types.split(","), injector=injector,
        llm=LLMInjectorConfig(model=model, backend=backend, batch_size=batch_size,
                              max_new_tokens=max_new_tokens, dtype=dtype, device=device),
        rules_seed=seed, verifier=VerifierConfig(min_difference=min_difference), max_attempts=max_attempts,
        fallback=fallback, seed=seed, limit=limit,
    )
    result = inject(records, out, config)
    summary = result.summary
    for et, counts in summary["per_type"].items():
        console.print(f"[bold]{et:>13}[/]: attempted {counts['attempted']}, accepted {counts['accepted']}, "
                      f"fallen back {counts['fallen_back']}, rejected {counts['rejected']}, "
                      f"mean difference {counts['mean_difference']}")
    console.print(f"{summary['pairs']} pairs -> {result.pairs_path}  (resumed {summary['resumed_items']} items, "
                  f"{summary['wall_time_s']} s)")
    if summary["pairs"] == 0:
        console.print("[red]no usable negatives[/]")
        raise typer.Exit(1)
    typer.echo(json.dumps({"pairs": str(result.pairs_path), "kto": str(result.kto_path)}))


def register(app: typer.Typer) -> None:
    app.command("inject")(inject_command)
