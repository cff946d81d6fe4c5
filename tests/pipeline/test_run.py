"""`seapo run`: the stages wired together, the report, the config handling."""

import json
import subprocess
import sys

import pytest
import yaml

from seapo.errors import InputError
from seapo.pipeline.config import RunConfig, load_run_config, packaged_config
from seapo.pipeline.run import run


def test_default_config_is_the_offline_demo():
    config = load_run_config()
    assert config.prepare.source == "demo" and config.train.model == "embedded"
    assert config.inject.llm.backend.model == "embedded"
    assert config.inject.strategy == "mixed" and config.train.algo == "kto" and config.train.lora
    assert set(config.inject.error_types) == {"correctness", "logic", "hallucination"}


def test_overrides_and_config_errors_name_file_line_and_field(tmp_path):
    config = load_run_config(None, {"train.epochs": 1, "inject.injector": "rules"})
    assert config.train.epochs == 1 and config.inject.injector == "rules"
    bad = tmp_path / "bad.yaml"
    bad.write_text("out: x\ntrain:\n  algo: kto\n  epochs: -3\n")
    with pytest.raises(InputError) as err:
        load_run_config(bad)
    assert err.value.path == str(bad) and err.value.line == 4 and err.value.field == "train.epochs"
    bad.write_text("inject:\n  strategy: sometimes\n")
    with pytest.raises(InputError, match="inject.strategy"):
        load_run_config(bad)
    bad.write_text("train: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_run_config(bad)


def test_config_show_prints_the_resolved_yaml():
    out = subprocess.run([sys.executable, "-m", "seapo.cli", "config", "show", "--set", "train.epochs=2"],
                         check=True, capture_output=True, text=True).stdout
    shown = yaml.safe_load(out)
    assert shown["train"]["epochs"] == 2
    assert RunConfig(**shown) == load_run_config(packaged_config(), {"train.epochs": 2})


def test_run_wires_every_stage_and_resumes(tmp_path, tiny_model):
    config = load_run_config(None, {
        "out": str(tmp_path / "run"), "prepare.limit": 30, "inject.injector": "rules",
        "train.model": str(tiny_model), "train.max_steps": 2, "train.batch_size": 4,
        "train.max_length": 256, "train.learning_rate": 1e-3,
    })
    result = run(config)
    report = result.report.read_text()
    # report.html beside report.md: the inspector page of this run
    assert result.report_html == tmp_path / "run" / "report.html" and result.report.parent == result.out
    assert 'id="data" data-encoding="gzip"' in result.report_html.read_text(encoding="utf-8")
    for heading in ("## Data", "## Injection", "## Training", "## Held-out preference accuracy",
                    "## Wall time per stage", "## Resolved config", "### Shortcut audit"):
        assert heading in report
    assert "not enough pairs" in report  # 30 mixed pairs: about 3 test records per type
    stages = json.loads((tmp_path / "run" / "stages.json").read_text())
    assert list(stages) == ["prepare", "inject", "train"]
    assert stages["prepare"]["kept"] == 30
    inject_summary = stages["inject"]["summary"]
    # mixed: one planned item per record, each a pair or a rejected item
    assert inject_summary["pairs"] + inject_summary["rejected_items"] == 30 and inject_summary["pairs"] >= 15
    # training uses exactly the plan's pairs: every pair is a training or a held-out pair
    assert stages["train"]["train_pairs"] + stages["train"]["heldout_pairs"] == inject_summary["pairs"]
    assert stages["train"]["heldout_before"]["overall"]["n"] > 0 and stages["train"]["heldout_after"]
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert env["packages"]["trl"] and env["python"]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["max_steps"] == 2
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(stages["train"]["merged_dir"])
    # A second run finds every stage done and only rewrites the report.
    again = run(config)
    assert again.stages["train"]["wall_time_s"] == stages["train"]["wall_time_s"]
    assert again.report_html.is_file()  # rewritten with the report


@pytest.mark.slow
def test_default_demo_runs_end_to_end(tmp_path):
    """The README's main job: `seapo run` with the default config (embedded model, demo data)."""
    subprocess.run([sys.executable, "-m", "seapo.cli", "run", "--out", str(tmp_path / "demo")], check=True)
    stages = json.loads((tmp_path / "demo" / "stages.json").read_text())
    summary = stages["inject"]["summary"]
    # Every record ends up as a pair or a rejected item; the judge and rules v2 refuse some.
    assert summary["records"] >= 48 and summary["pairs"] + summary["rejected_items"] == summary["records"]
    assert summary["pairs"] >= summary["records"] // 2
    assert summary["injector"] == "llm"
    before, after = stages["train"]["heldout_before"], stages["train"]["heldout_after"]
    assert before["overall"]["n"] > 0 and after["overall"]["n"] == before["overall"]["n"]
    report = (tmp_path / "demo" / "report.md").read_text()
    # the held-out table (divergent-span accuracy before and after) and its one-sentence verdict
    assert "## Held-out preference accuracy" in report and "divergent-span acc. before" in report
    assert "implicit-reward accuracy" in report and "train_log.png" in report


def test_run_with_an_eval_suite_compares_base_and_trained(tmp_path, tiny_model, shared_data, monkeypatch):
    import seapo.evaluate.runner as runner

    backends, real_evaluate = [], runner.evaluate

    def recording_evaluate(model, config):
        backends.append(config.generation_backend)
        return real_evaluate(model, config)

    monkeypatch.setattr(runner, "evaluate", recording_evaluate)
    config = load_run_config(None, {
        "out": str(tmp_path / "run"), "prepare.limit": 12, "inject.injector": "rules",
        "train.model": str(tiny_model), "train.max_steps": 1, "train.batch_size": 4, "train.max_length": 128,
        "eval.tasks": ["truthfulqa_mc"], "eval.limit": 3, "eval.data_dir": str(shared_data / "eval"),
    })
    result = run(config)
    stages = result.stages
    assert set(stages["eval"]["metrics"]) == {"base", "trained"}
    # auto is pinned to one backend for both sides (llama.cpp cannot run the trained folder)
    assert backends == ["transformers", "transformers"]
    report = result.report.read_text()
    assert "## Evaluation: base vs trained" in report and "base" in report and "trained" in report
