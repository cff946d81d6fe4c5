"""`evaluate()` end to end on the real eval data: every paper task runs, outputs, caching, resume."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest

from seapo.errors import InputError
from seapo.evaluate.runner import EvalConfig, evaluate
from seapo.io import read_jsonl

# A few groups of the grouped tasks keep the run short; every paper task still runs.
SMOKE_TASKS = ["truthfulqa_mc", "mmlu:abstract_algebra", "mmlu:virology", "gsm8k", "math",
               "bbh:boolean_expressions", "bbh:dyck_languages", "humaneval"]


@pytest.fixture(scope="module")
def smoke_run(tiny_model, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-smoke")
    config = EvalConfig(tasks=SMOKE_TASKS, limit=2, data_dir=str(shared_data / "eval"), out=str(out),
                        batch_size=8, dtype="fp32", num_samples=2, threads=1)
    return evaluate(str(tiny_model), config), config


def test_every_paper_task_runs_on_real_data(smoke_run):
    result, _ = smoke_run
    assert set(result.tasks) == {"truthfulqa_mc", "mmlu", "gsm8k", "bbh", "humaneval"}
    assert result.tasks["truthfulqa_mc"].n == 2 and result.tasks["truthfulqa_mc"].n_available == 817
    assert result.tasks["mmlu"].n == 4 and set(result.tasks["mmlu"].groups) == {"abstract_algebra", "virology"}
    assert result.tasks["bbh"].n == 4 and result.tasks["gsm8k"].n == 2 and result.tasks["humaneval"].n == 2
    for res in result.tasks.values():
        assert res.subset and res.metrics and all(0.0 <= v <= 1.0 for v in res.metrics.values())
    # MATH is not in the shared data: skipped with a note, not silently dropped.
    assert "data not available" in result.skipped["math"]
    assert set(result.dimensions) == {"truthfulness", "knowledge", "math", "reasoning", "code"}
    assert result.dimensions["truthfulness"] == pytest.approx(
        (result.tasks["truthfulqa_mc"].metrics["mc1"] + result.tasks["truthfulqa_mc"].metrics["mc2"]) / 2)


def test_metrics_json_and_predictions(smoke_run, tiny_model):
    result, config = smoke_run
    metrics = json.loads(result.metrics_path.read_text())
    assert metrics["subset"] is True and metrics["config"]["limit"] == 2
    assert metrics["model"]["spec"] == str(tiny_model) and metrics["model"]["dtype"] == "float32"
    assert len(metrics["model"]["fingerprint"]) == 16
    assert {"torch", "transformers", "python"} <= set(metrics["versions"])
    mmlu = metrics["tasks"]["mmlu"]
    assert mmlu["settings"]["fewshot"] == 5 and mmlu["settings"]["aggregate"] == "macro"
    assert mmlu["metrics"]["acc"] == pytest.approx(
        sum(g["acc"] for g in mmlu["groups"].values()) / len(mmlu["groups"]))
    gsm = metrics["tasks"]["gsm8k"]["settings"]
    assert gsm["max_new_tokens"] == 512 and gsm["stop"] == ["\n\n", "Question:"] and gsm["fewshot"] == 8
    assert metrics["tasks"]["humaneval"]["settings"]["samples"] == 2
    preds = read_jsonl(result.out_dir / "predictions" / "gsm8k.jsonl")
    assert [p["id"] for p in preds] == ["0", "1"] and preds[0]["target"] == "18"
    assert {"output", "extracted", "metrics"} <= set(preds[0])
    he = read_jsonl(result.out_dir / "predictions" / "humaneval.jsonl")
    assert len(he[0]["samples"]) == 2 and len(he[0]["results"]) == 3
    tqa = read_jsonl(result.out_dir / "predictions" / "truthfulqa_mc.jsonl")
    assert set(tqa[0]["logliks"]) >= {tqa[0]["best"]}


def test_cached_items_are_not_recomputed(smoke_run, tiny_model):
    result, config = smoke_run
    again = evaluate(str(tiny_model), config)
    for name, res in again.tasks.items():
        assert res.cached == res.n, name
        assert res.metrics == result.tasks[name].metrics
    # A larger limit computes only the new items.
    bigger = evaluate(str(tiny_model), EvalConfig(**{**config.__dict__, "tasks": ["truthfulqa_mc"], "limit": 3}))
    assert bigger.tasks["truthfulqa_mc"].cached == 2 and bigger.tasks["truthfulqa_mc"].n == 3


def test_deterministic_subset_and_unknown_group(tiny_model, shared_data, tmp_path):
    config = EvalConfig(tasks=["mmlu:no_such_subject"], data_dir=str(shared_data / "eval"), out=str(tmp_path))
    with pytest.raises(InputError, match="no group"):
        evaluate(str(tiny_model), config)
    with pytest.raises(InputError, match="does not exist"):
        evaluate(str(tiny_model), EvalConfig(tasks=["gsm8k"], data_dir=str(tmp_path / "nope"), out=str(tmp_path)))


def test_interrupted_run_resumes(tiny_model, shared_data, tmp_path):
    """Kill a real `seapo eval` process mid-run; the rerun reuses what it had committed."""
    out = tmp_path / "out"
    args = [sys.executable, "-m", "seapo.cli", "eval", "--model", str(tiny_model), "--tasks", "truthfulqa_mc",
            "--limit", "40", "--data-dir", str(shared_data / "eval"), "--out", str(out), "--dtype", "fp32",
            "--threads", "1", "--batch-size", "4", "--chunk-size", "4"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "cache.sqlite"
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    done = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 8:
                break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    with sqlite3.connect(db) as con:
        committed = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert 8 <= committed < 40, "the run should have been killed mid-way"
    assert not any(out.glob("*/metrics.json"))  # killed before the end
    result = evaluate(str(tiny_model), EvalConfig(tasks=["truthfulqa_mc"], limit=40,
                                                  data_dir=str(shared_data / "eval"), out=str(out),
                                                  dtype="fp32", threads=1, batch_size=4))
    assert result.tasks["truthfulqa_mc"].cached == committed
    assert result.tasks["truthfulqa_mc"].n == 40


def test_model_fingerprint_tells_copies_apart_and_is_stable(tiny_model, tmp_path):
    """A copy with identical files and times (a fine-tune of the same size) must not reuse cached results."""
    import shutil

    from seapo.evaluate.lm import model_fingerprint

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)  # copy2 keeps sizes and modification times
    assert model_fingerprint(str(tiny_model), "float32") == model_fingerprint(str(tiny_model), "float32")
    assert model_fingerprint(str(tiny_model), "float32") != model_fingerprint(str(copy), "float32")
    assert model_fingerprint(str(tiny_model), "float32") != model_fingerprint(str(tiny_model), "bfloat16")
