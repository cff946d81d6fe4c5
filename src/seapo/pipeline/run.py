"""``seapo run``: prepare -> inject -> train (+ held-out accuracy) -> [evaluate] -> report.md.

Each stage writes into its own folder of the run directory and a ``stages.json`` entry when
done; running the same command again skips finished stages and resumes the unfinished one
(injection from its SQLite store, training from its last checkpoint).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from seapo.io import write_json
from seapo.pipeline.config import RunConfig, load_run_config
from seapo.progress import console
from seapo.redact import redact_argv

PACKAGES = ("seapo", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "lm-eval")


@dataclass
class RunResult:
    out: Path
    report: Path
    stages: dict[str, Any]


def environment() -> dict[str, Any]:
    """What is needed to repeat a run: versions, Python, platform, git revision."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                  cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        revision = None
    return {"packages": versions, "python": sys.version.split()[0], "platform": platform.platform(),
            "git_revision": revision, "command": redact_argv(sys.argv)}


class _Stages:
    """Bookkeeping of finished stages in ``stages.json``."""

    def __init__(self, out: Path) -> None:
        self.path = out / "stages.json"
        self.done: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def run(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if name in self.done:
            console.print(f"[dim]stage {name}: already done, skipped[/]")
            return self.done[name]
        console.rule(f"[bold]{name}")
        started = time.time()
        info = fn()
        info["wall_time_s"] = round(time.time() - started, 1)
        self.done[name] = info
        write_json(self.path, self.done)
        return info


def run(config: RunConfig | str | Path | None = None, *, out: str | Path | None = None) -> RunResult:
    """Run every stage; ``config`` is a :class:`RunConfig`, a YAML path, or None for the demo."""
    from seapo.data.prepare import prepare
    from seapo.inject.pipeline import inject
    from seapo.pipeline.report import write_report
    from seapo.train.trainer import train

    if not isinstance(config, RunConfig):
        config = load_run_config(config)
    if out is not None:
        config = config.updated(out=str(out))
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    write_json(run_dir / "environment.json", environment())
    stages = _Stages(run_dir)
    records_path = run_dir / "data" / "records.jsonl"
    inject_dir, train_dir = run_dir / "inject", run_dir / "train"

    def do_prepare() -> dict[str, Any]:
        result = prepare(out=records_path, config=config.prepare)
        return {"records": str(result.out), "read": result.read, "kept": result.kept, "rejected": result.rejected,
                "filtered": result.filtered, "duplicates": result.duplicates,
                "duplicate_prompts": result.duplicate_prompts, "format": result.format}

    def do_inject() -> dict[str, Any]:
        result = inject(records_path, inject_dir, config.inject)
        return {"dir": str(inject_dir), "summary": result.summary}

    def do_train() -> dict[str, Any]:
        # negatives.jsonl holds exactly the strategy's plan (mixed: one negative per record), so
        # training uses every negative in it: the plan decides, not a second draw.
        train_config = config.train.updated(output_dir=str(train_dir), pairing="all", resume=True)
        result = train(inject_dir / "negatives.jsonl", train_config)
        return result.to_dict()

    def do_eval() -> dict[str, Any]:
        from seapo.evaluate.compare import compare
        from seapo.evaluate.runner import evaluate

        assert config.eval is not None
        metrics = {}
        for label, model in (("base", config.train.model), ("trained", stages.done["train"]["merged_dir"])):
            eval_config = config.eval.updated(out=str(run_dir / "eval"), run_name=label)
            metrics[label] = str(evaluate(model, eval_config).metrics_path)
        comparison = compare(list(metrics.values()), out=run_dir / "eval")
        return {"metrics": metrics, "table": str(comparison.table_path), "chart": str(comparison.chart_path)}

    stages.run("prepare", do_prepare)
    stages.run("inject", do_inject)
    stages.run("train", do_train)
    if config.eval is not None:
        stages.run("eval", do_eval)
    report = write_report(run_dir, config, stages.done)
    console.print(f"[bold green]done[/]: {report}")
    return RunResult(run_dir, report, stages.done)
