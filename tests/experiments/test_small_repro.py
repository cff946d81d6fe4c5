"""The small reproduction's driver (experiments/small_repro/run.py) end to end at its smoke scale: a tiny
random model, a dozen records, two update steps, tiny evaluation subsets."""

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from seapo.pipeline.config import load_run_config

REPO = Path(__file__).resolve().parents[2]


def _driver():
    spec = importlib.util.spec_from_file_location("small_repro_run", REPO / "experiments" / "small_repro" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # four trainings and evaluations of a tiny model: a few minutes on 2 cores
def test_the_study_runs_resumes_and_tabulates(tmp_path, tiny_model, shared_data, monkeypatch):
    monkeypatch.setenv("SEAPO_SHARED_DATA", str(shared_data))
    driver = _driver()
    cwd = os.getcwd()
    args = ["--scale", "smoke", "--model", str(tiny_model), "--root", str(tmp_path / "work"),
            "--configs", str(tmp_path / "configs"), "--results", str(tmp_path / "results")]
    only = ["--only", "vanilla-kto-s1", "seapo-kto-mixed-s1"]
    try:
        driver.main([*args, "--stage", "data"])
        with pytest.raises(SystemExit, match="run `--stage tune` first"):
            driver.main([*args, "--stage", "configs"])  # no settings before they are chosen
        driver.main([*args, "--stage", "tune"])
        tune = json.loads((tmp_path / "results" / "tune.json").read_text())  # committed with the figures
        shutil.rmtree(tmp_path / "work" / "tune")  # a fresh machine: the committed record, no point trained again
        driver.main([*args, "--stage", "tune"])
        assert not (tmp_path / "work" / "tune" / "points").exists()
        assert json.loads((tmp_path / "results" / "tune.json").read_text())["choice"] == tune["choice"]
        assert len(tune["points"]) == 2 and tune["choice"]["settings"]["max_steps"] == 2
        driver.main([*args, "--stage", "configs"])
        # every condition is a plain `seapo run` config
        configs = sorted((tmp_path / "configs").glob("*.yaml"))
        assert len(configs) == len(driver.conditions(driver.SCALES["smoke"]))
        for path in configs:
            config = load_run_config(path)
            assert config.train.heldout_fraction == 0 and len(config.train.heldout_pairs) == 2
            if "paper-lr" not in path.name:  # every condition but one takes the tune's choice
                assert config.train.learning_rate == tune["choice"]["settings"]["learning_rate"]
        driver.main([*args, "--stage", "conditions", *only, "base"])
        runs = tmp_path / "work" / "runs"
        stages = json.loads((runs / "vanilla-kto-s1" / "stages.json").read_text())
        driver.main([*args, "--stage", "conditions", *only, "base"])  # done: nothing is redone
        assert json.loads((runs / "vanilla-kto-s1" / "stages.json").read_text()) == stages
        # both conditions scored the very same held-out pairs
        held = [json.loads((runs / n / "train" / "heldout.json").read_text())["pairs"]
                for n in ("vanilla-kto-s1", "seapo-kto-mixed-s1")]
        assert held[0] == held[1] and any(i.endswith("-source") for i in held[0])
        # a condition whose figures are in results/ is done even without its run folder (next session)
        shutil.rmtree(runs / "vanilla-kto-s1")
        driver.main([*args, "--stage", "conditions", *only])
        assert not (runs / "vanilla-kto-s1").exists()
        driver.main([*args, "--stage", "compare"])
        driver.main([*args, "--stage", "table"])
    finally:
        os.chdir(cwd)
    results = tmp_path / "results"
    assert sorted(p.name for p in results.iterdir() if p.is_dir()) == ["base", "compare", "seapo-kto-mixed-s1",
                                                                       "vanilla-kto-s1"]
    assert "vanilla-kto-s1" in (results / "compare" / "truthfulqa" / "comparison.md").read_text()
    run = json.loads((results / "seapo-kto-mixed-s1" / "run.json").read_text())
    assert run["train"]["global_step"] == 2 and run["heldout_after"]["per_error_type"]["source"]["n"] > 0
    metrics = json.loads((results / "base" / "eval-truthfulqa.json").read_text())
    assert metrics["tasks"]["truthfulqa_mc"]["n"] == 4
    page = (results / "small_repro.md").read_text()
    for row in ("| base | 1 |", "| vanilla-kto | 1 |", "| seapo-kto-mixed | 1 |", "## Shortcut audit",
                "| learning_rate 0.001, max_steps 2 |", "Chosen: **learning_rate"):
        assert row in page
    assert (results / "small_repro.png").stat().st_size > 1000
