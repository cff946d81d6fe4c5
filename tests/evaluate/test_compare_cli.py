"""`seapo eval` / `seapo compare` CLIs and the compare table and chart."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from seapo.cli import app
from seapo.errors import InputError
from seapo.evaluate.compare import compare


@pytest.fixture(scope="module")
def second_tiny_model(tmp_path_factory, tiny_model):
    """Another random tiny model (different seed): its scores differ from tiny_model's."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-model-2")
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    torch.manual_seed(1)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def two_runs(tiny_model, second_tiny_model, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    runner = CliRunner()
    dirs = []
    for name, model in (("base", tiny_model), ("other", second_tiny_model)):
        res = runner.invoke(app, ["eval", "--model", str(model), "--tasks", "truthfulqa_mc,mmlu:anatomy,math",
                                  "--limit", "3", "--data-dir", str(shared_data / "eval"), "--out", str(out),
                                  "--run-name", name, "--dtype", "fp32", "--threads", "1"])
        assert res.exit_code == 0, res.output
        assert "subset evaluation" in res.output and "skipped math" in res.output
        dirs.append(out / name)
    return dirs


def test_eval_cli_writes_metrics(two_runs):
    metrics = json.loads((two_runs[0] / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"truthfulqa_mc", "mmlu"} and metrics["tasks"]["mmlu"]["n"] == 3
    assert "math" in metrics["skipped"]


def test_compare_table_and_chart(two_runs, tmp_path):
    result = compare([two_runs[0], two_runs[1] / "metrics.json"], out=tmp_path)
    base = json.loads((two_runs[0] / "metrics.json").read_text())
    other = json.loads((two_runs[1] / "metrics.json").read_text())
    labels = [r["label"] for r in result.rows]
    assert labels == ["**truthfulness**", "truthfulqa_mc mc1", "truthfulqa_mc mc2", "**knowledge**", "mmlu acc"]
    mc2 = 100 * base["tasks"]["truthfulqa_mc"]["metrics"]["mc2"]
    mc2_other = 100 * other["tasks"]["truthfulqa_mc"]["metrics"]["mc2"]
    assert mc2 != mc2_other
    line = next(x for x in result.markdown.splitlines() if "truthfulqa_mc mc2" in x)
    assert f"{mc2:.1f}" in line and f"({mc2_other - mc2:+.1f})" in line
    assert result.columns == ["base", "other"]  # the run folders
    assert any("subset evaluation" in n for n in result.notes) and any("math skipped" in n for n in result.notes)
    png = result.chart_path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert result.table_path.read_text() == result.markdown


def test_compare_cli_and_bad_input(two_runs, tmp_path):
    res = CliRunner().invoke(app, ["compare", str(two_runs[0]), str(two_runs[1]), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "| task / dimension |" in res.output and (tmp_path / "comparison.png").is_file()
    with pytest.raises(InputError, match="no metrics.json"):
        compare([tmp_path / "nothing-here"])
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(InputError) as err:
        compare([bad])
    assert err.value.line == 1


def test_compare_reads_an_eval_out_folder_with_one_run(two_runs, tmp_path):
    """`seapo eval --out X` writes X/<run>/metrics.json: X names its run when there is only one."""
    import shutil

    single = tmp_path / "single"
    shutil.copytree(two_runs[1], single / "other")
    result = compare([two_runs[0], single])
    assert result.columns == ["base", "other"]
    with pytest.raises(InputError, match="several runs here"):
        compare([two_runs[0].parent])


def _copy_with(run, folder, task: str, **settings):
    """A copy of a run whose ``task`` was scored with other engine settings."""
    import shutil

    shutil.copytree(run, folder)
    path = folder / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["tasks"][task]["settings"].update(settings)
    path.write_text(json.dumps(metrics))
    return folder


@pytest.mark.parametrize("settings,what", [
    ({"engine": "native"}, "engine"),
    ({"lm_eval_version": "0.4.2"}, "lm-eval version"),
    ({"task_versions": {"mmlu/default/_default_template_yaml": 0.0}}, "lm-eval task versions"),
    ({"protocol_hash": "000000000000"}, "task protocol (protocol_hash)"),
    ({"generation_backend": "llamacpp"}, "generation backend"),
])
def test_compare_refuses_runs_scored_differently(two_runs, tmp_path, settings, what):
    """Scores of one task from different engines, lm-eval versions or task versions are not comparable."""
    other = _copy_with(two_runs[1], tmp_path / "other-setup", "mmlu", **settings)
    with pytest.raises(InputError) as err:
        compare([two_runs[0], other])
    message = str(err.value)
    assert f"cannot compare task 'mmlu': its {what} differs" in message
    assert "run 'base'" in message and "run 'other-setup'" in message
    assert not (tmp_path / "comparison.md").exists()
    res = CliRunner().invoke(app, ["compare", str(two_runs[0]), str(other), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "cannot compare task 'mmlu'" in " ".join(res.output.split()), res.output
    assert not (tmp_path / "comparison.md").exists()


def test_compare_refuses_a_run_from_before_engines_were_recorded(two_runs, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(two_runs[1], old)
    metrics = json.loads((old / "metrics.json").read_text())
    for task in metrics["tasks"].values():
        for key in ("lm_eval_version", "task_versions"):
            task["settings"].pop(key)
    (old / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(InputError, match="none recorded"):
        compare([two_runs[0], old])


def test_compare_cli_bad_input_exits_2(tmp_path):
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "nothing-here")])
    assert res.exit_code == 2 and "no metrics.json" in " ".join(res.output.split())


def test_compare_notes_runs_computed_with_other_numerics(two_runs, tmp_path):
    metrics = [json.loads((d / "metrics.json").read_text()) for d in two_runs]
    assert not any("different numerics" in n for n in compare(two_runs).notes)  # same dtype and batch
    paths = []
    for k, (m, dtype, batch) in enumerate(zip(metrics, ("bfloat16", "bfloat16"), (16, 32), strict=True)):
        m["model"]["dtype"], m["config"]["backend"]["batch_size"] = dtype, batch
        path = tmp_path / f"run{k}" / "metrics.json"
        path.parent.mkdir()
        path.write_text(json.dumps(m))
        paths.append(path)
    result = compare(paths)
    note = next(n for n in result.notes if "different numerics" in n)
    assert "batch 16" in note and "batch 32" in note and note in result.markdown
