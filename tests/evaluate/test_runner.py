"""`evaluate()` end to end on the real eval data: every paper task runs, outputs, caching, resume, one engine."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest

from seapo.errors import ConfigError, InputError
from seapo.evaluate.runner import EvalConfig, evaluate
from seapo.evaluate.tasks import get_task
from seapo.io import read_jsonl
from tests.evaluate.helpers import eval_config

# A few groups of the grouped tasks keep the run short; every paper task still runs.
SMOKE_TASKS = ["truthfulqa_mc", "mmlu:abstract_algebra", "mmlu:virology", "gsm8k", "math",
               "bbh:boolean_expressions", "bbh:dyck_languages", "humaneval"]


@pytest.fixture(scope="module")
def smoke_run(tiny_model, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-smoke")
    config = eval_config(tasks=SMOKE_TASKS, limit=2, data_dir=str(shared_data / "eval"), out=str(out),
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
    bigger = evaluate(str(tiny_model), config.updated(tasks=["truthfulqa_mc"], limit=3))
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
    result = evaluate(str(tiny_model), eval_config(tasks=["truthfulqa_mc"], limit=40,
                                                   data_dir=str(shared_data / "eval"), out=str(out),
                                                   dtype="fp32", threads=1, batch_size=4))
    assert result.tasks["truthfulqa_mc"].cached == committed
    assert result.tasks["truthfulqa_mc"].n == 40


def test_model_key_follows_the_weights_not_the_files(tiny_model, tmp_path):
    """seapo's one content fingerprint: an identical copy shares cached results; a copy whose weights
    changed -- same size, modification time put back -- does not; nor does another dtype."""
    import os
    import shutil

    from seapo.evaluate.cache import model_key

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)  # copy2 keeps sizes and modification times
    key = model_key(tiny_model, "float32")
    assert key == model_key(tiny_model, "float32")  # stable
    assert model_key(copy, "float32") == key  # an identical copy is the same model
    assert model_key(tiny_model, "bfloat16") != key
    weights = copy / "model.safetensors"
    stat = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one byte of the last tensor
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_size == stat.st_size and weights.stat().st_mtime_ns == stat.st_mtime_ns
    assert model_key(copy, "float32") != key


def test_metrics_json_records_the_one_engine_per_task(smoke_run):
    """lm-eval scores every task it can express, HumanEval runs in the sandbox; metrics.json says so per
    task, with lm-eval's version and the task's versions (what `seapo compare` checks)."""
    import importlib.metadata

    result, _ = smoke_run
    metrics = json.loads(result.metrics_path.read_text())
    version = importlib.metadata.version("lm_eval")
    for name, task in metrics["tasks"].items():
        settings = task["settings"]
        if name == "humaneval":
            assert (settings["engine"], settings["lm_eval_version"], settings["task_versions"]) == ("sandbox", None, {})
        else:
            assert settings["engine"] == "lm-eval" and settings["lm_eval_version"] == version, name
            assert settings["task_versions"] and all(v is not None for v in settings["task_versions"].values())
            assert settings["lm_backend"] == "seapo"
        assert settings["protocol_hash"] == get_task(name).protocol_hash()
    assert "engine" not in metrics["config"] and metrics["config"]["backend"]["dtype"] == "fp32"


def test_lm_eval_version_is_part_of_the_cache_key(tiny_model, shared_data, tmp_path, monkeypatch):
    """Results scored by one lm-eval version are never served for another."""
    from seapo.evaluate import lmeval_engine

    config = eval_config(tasks=["truthfulqa_mc"], limit=2, data_dir=str(shared_data / "eval"), out=str(tmp_path),
                         dtype="fp32", threads=1)
    first = evaluate(str(tiny_model), config)
    assert evaluate(str(tiny_model), config).tasks["truthfulqa_mc"].cached == 2
    monkeypatch.setattr(lmeval_engine, "version", lambda: "0.0.1-other")
    other = evaluate(str(tiny_model), config)
    assert other.tasks["truthfulqa_mc"].cached == 0
    assert other.tasks["truthfulqa_mc"].settings["lm_eval_version"] == "0.0.1-other"
    assert other.tasks["truthfulqa_mc"].metrics == pytest.approx(first.tasks["truthfulqa_mc"].metrics)


def test_without_lm_eval_evaluation_says_how_to_install_it(tiny_model, shared_data, tmp_path, monkeypatch):
    """No silent fallback to another scorer: a task lm-eval scores needs lm-eval, and the error says how
    to install it -- before any model is loaded. HumanEval (the sandbox) needs no lm-eval."""
    from typer.testing import CliRunner

    from seapo.cli import app

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` fails, find_spec finds nothing
    config = eval_config(tasks=["mmlu:anatomy"], limit=1, data_dir=str(shared_data / "eval"), out=str(tmp_path),
                         model=str(tmp_path / "no-such-model"))
    with pytest.raises(InputError, match=r"lm-evaluation-harness, which is not installed: pip install 'seapo\[eval\]'"):
        evaluate(None, config)
    res = CliRunner().invoke(app, ["eval", "--model", str(tmp_path / "no-such-model"), "--tasks", "gsm8k", "--limit",
                                   "1", "--data-dir", str(shared_data / "eval"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "pip install 'seapo[eval]'" in " ".join(res.output.split()), res.output
    code = evaluate(str(tiny_model), eval_config(tasks=["humaneval"], limit=1, num_samples=0, dtype="fp32",
                                                 threads=1, data_dir=str(shared_data / "eval"), out=str(tmp_path)))
    assert code.tasks["humaneval"].settings["engine"] == "sandbox" and code.tasks["humaneval"].n == 1


@pytest.mark.parametrize("fields,field", [
    ({"lm_backend": "vllm"}, "lm_backend"), ({"backend": {"dtype": "fp8"}}, "backend.dtype"),
    ({"limit": 0}, "limit"), ({"batch_size": 0}, "backend.batch_size"), ({"chunk_size": 0}, "chunk_size"),
    ({"num_samples": -1}, "num_samples"), ({"threads": 0}, "threads"), ({"suite": "no-such-suite"}, "suite"),
    ({"engine": "native"}, "engine"),  # there is one engine: the setting is gone
])
def test_eval_config_rejects_bad_values_from_python(fields, field):
    with pytest.raises(ConfigError) as err:
        eval_config(**fields)
    assert err.value.field == field
    with pytest.raises(ConfigError):
        EvalConfig().updated(fields)


@pytest.mark.parametrize("args,option", [
    (["--lm-backend", "vllm"], "--lm-backend"), (["--dtype", "fp8"], "--dtype"), (["--limit", "0"], "--limit"),
    (["--batch-size", "0"], "--batch-size"), (["--engine", "native"], "--engine"),
])
def test_eval_cli_rejects_bad_values_with_exit_code_2(args, option, tmp_path):
    from typer.testing import CliRunner

    from seapo.cli import app

    res = CliRunner().invoke(app, ["eval", "--model", "embedded", "--out", str(tmp_path), *args])
    assert res.exit_code == 2, res.output
    assert option in res.output or option.lstrip("-").replace("-", "_") in res.output
    assert not any(tmp_path.iterdir())  # refused before doing anything


def test_eval_config_fields_are_documented_and_map_to_the_old_flags():
    from seapo.config.cli import build_flags
    from seapo.evaluate.cli import ALIASES, EXCLUDE

    assert all(info.description for info in EvalConfig.model_fields.values())
    flags = {f.path: f.decls for f in build_flags(EvalConfig, aliases=ALIASES, exclude=EXCLUDE)}
    assert flags["backend.model"] == ["--model", "-m"] and flags["tasks"] == ["--tasks", "-t"]
    assert flags["limit"] == ["--limit", "-n"] and flags["backend.batch_size"] == ["--batch-size", "-b"]
    assert flags["out"] == ["--out", "-o"] and flags["use_cache"] == ["--use-cache/--no-cache"]
    for key, flag in (("backend.dtype", "--dtype"), ("backend.device", "--device"), ("data_dir", "--data-dir"),
                      ("run_name", "--run-name"), ("lm_backend", "--lm-backend"), ("num_samples", "--num-samples"),
                      ("threads", "--threads"), ("chunk_size", "--chunk-size"), ("seed", "--seed"),
                      ("suite", "--suite"), ("generation_backend", "--generation-backend")):
        assert flags[key] == [flag], key
    assert "backend.name" not in flags
