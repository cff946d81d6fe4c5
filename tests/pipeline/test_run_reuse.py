"""`seapo run` never reuses a stage done with other settings (issue 9, class 4), never runs twice
in one folder at once (class 3), and finds a missing model before the first stage.

Training is replaced by a fake that reads the pairs the way `seapo train` does
(:func:`seapo.train.data.load_preferences`) and writes the files of a train folder, so these tests
run in seconds; tests/pipeline/test_run.py trains for real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from seapo.errors import InputError, ModelNotFoundError
from seapo.io import write_json
from seapo.pipeline.config import load_run_config
from seapo.pipeline.run import run


@pytest.fixture
def fake_model(tmp_path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


class FakeTrain:
    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.fail_next = False

    def __call__(self, pairs_path, config):
        from seapo.train.data import load_preferences

        data = load_preferences(pairs_path)
        out = Path(config.output_dir)
        checkpoints = out / "checkpoints"
        self.calls.append({"negatives": sum(len(g.negatives) for g in data.groups), "resume": config.resume,
                           "checkpoints": checkpoints.is_dir(), "max_steps": config.max_steps})
        if self.fail_next:  # killed after a checkpoint
            self.fail_next = False
            (checkpoints / "checkpoint-1").mkdir(parents=True, exist_ok=True)
            raise KeyboardInterrupt
        (out / "merged").mkdir(parents=True, exist_ok=True)
        (out / "merged" / "config.json").write_text("{}")
        result = {"train_pairs": self.calls[-1]["negatives"], "heldout_pairs": 0, "global_step": 1,
                  "train_time_s": 0.1, "settings": {}, "merged_dir": str(out / "merged"), "plot_path": None,
                  "heldout_before": None, "heldout_after": None}
        write_json(out / "result.json", result)
        return SimpleNamespace(to_dict=lambda: dict(result))


@pytest.fixture
def fake_train(monkeypatch) -> FakeTrain:
    fake = FakeTrain()
    monkeypatch.setattr("seapo.train.trainer.train", fake)
    return fake


def _config(tmp_path, model, **overrides):
    return load_run_config(None, {"out": str(tmp_path / "run"), "prepare.limit": 20, "inject.injector": "rules",
                                  "train.model": str(model), **overrides})


OTHER = {"prepare.limit": 12, "inject.strategy": "all", "inject.error_types": ["logic"]}


def test_a_stage_done_with_other_settings_is_refused_naming_them(tmp_path, fake_model, fake_train):
    run(_config(tmp_path, fake_model))
    run_dir = tmp_path / "run"
    stages_before = (run_dir / "stages.json").read_text()
    config_before = (run_dir / "config.yaml").read_text()
    with pytest.raises(InputError) as err:
        run(_config(tmp_path, fake_model, **OTHER))
    message = str(err.value)
    assert str(run_dir) in message and "--force" in message and "another --out" in message
    for change in ("prepare.limit: 20 -> 12", 'inject.strategy: "mixed" -> "all"', "inject.error_types"):
        assert change in message
    assert "already done" not in message
    # Nothing moved: config.yaml still describes what is on disk, nothing was retrained.
    assert (run_dir / "config.yaml").read_text() == config_before
    assert (run_dir / "stages.json").read_text() == stages_before
    assert len(fake_train.calls) == 1


def test_force_redoes_the_changed_stage_and_every_later_one(tmp_path, fake_model, fake_train):
    first = run(_config(tmp_path, fake_model))
    made = first.stages["inject"]["summary"]
    assert made["pairs"] + made["rejected_items"] == 20 and fake_train.calls[-1]["negatives"] == made["pairs"] > 0
    again = run(_config(tmp_path, fake_model, force=True, **OTHER))
    summary = again.stages["inject"]["summary"]
    assert summary["records"] == 12 and summary["strategy"] == "all" and summary["error_types"] == ["logic"]
    assert again.stages["prepare"]["kept"] == 12
    assert len(fake_train.calls) == 2 and fake_train.calls[-1]["negatives"] == summary["pairs"]
    shown = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert shown["prepare"]["limit"] == 12 and shown["inject"]["strategy"] == "all"
    # The same settings once more: everything is skipped, nothing retrained.
    run(_config(tmp_path, fake_model, **OTHER))
    assert len(fake_train.calls) == 2


def test_a_changed_only_later_setting_redoes_only_from_that_stage(tmp_path, fake_model, fake_train):
    first = run(_config(tmp_path, fake_model))
    with pytest.raises(InputError, match=r"train.max_steps: -?\w+ -> 3[\s\S]*redo stage 'train'"):
        run(_config(tmp_path, fake_model, **{"train.max_steps": 3}))
    result = run(_config(tmp_path, fake_model, force=True, **{"train.max_steps": 3}))
    assert len(fake_train.calls) == 2 and fake_train.calls[-1]["max_steps"] == 3
    assert result.stages["inject"]["summary"]["pairs"] == first.stages["inject"]["summary"]["pairs"]
    assert fake_train.calls[-1]["negatives"] == first.stages["inject"]["summary"]["pairs"]


def test_an_output_changed_after_its_stage_is_refused(tmp_path, fake_model, fake_train):
    run(_config(tmp_path, fake_model))
    negatives = tmp_path / "run" / "inject" / "negatives.jsonl"
    lines = negatives.read_text().splitlines()
    negatives.write_text("\n".join(lines[:5]) + "\n")  # someone's edit, or a half-finished rewrite
    with pytest.raises(InputError, match=r"negatives.jsonl[\s\S]*--force"):
        run(_config(tmp_path, fake_model))
    assert len(fake_train.calls) == 1


def test_an_interrupted_stage_resumes_only_with_the_settings_it_began_with(tmp_path, fake_model, fake_train):
    fake_train.fail_next = True
    with pytest.raises(KeyboardInterrupt):
        run(_config(tmp_path, fake_model))
    # Other training settings: its checkpoint must not be resumed.
    with pytest.raises(InputError, match=r"train: begun \(and interrupted\)[\s\S]*train.max_steps"):
        run(_config(tmp_path, fake_model, **{"train.max_steps": 5}))
    assert len(fake_train.calls) == 1
    # The same settings: it resumes (the checkpoint is there, resume on).
    fake_train.fail_next = True
    with pytest.raises(KeyboardInterrupt):
        run(_config(tmp_path, fake_model))
    assert fake_train.calls[-1]["checkpoints"] and fake_train.calls[-1]["resume"]
    # --force with other settings: the old checkpoints are gone before training starts.
    run(_config(tmp_path, fake_model, force=True, **{"train.max_steps": 5}))
    assert not fake_train.calls[-1]["checkpoints"] and fake_train.calls[-1]["max_steps"] == 5


def test_a_missing_model_fails_before_the_first_stage(tmp_path, fake_train):
    with pytest.raises(ModelNotFoundError, match=r"train.model = '/no/such/model'"):
        run(_config(tmp_path, "/no/such/model"))
    assert not (tmp_path / "run" / "data" / "records.jsonl").exists()
    assert not (tmp_path / "run" / "inject").exists()
    config = _config(tmp_path, tmp_path, **{"inject.injector": "llm", "inject.llm.backend.model": "/no/injector"})
    with pytest.raises(ModelNotFoundError, match="inject.llm.backend.model = '/no/injector'"):
        run(config)
    assert not (tmp_path / "run" / "data" / "records.jsonl").exists()


def test_the_cli_exits_2_in_seconds_for_a_missing_model(tmp_path):
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "seapo.cli", "run", "--out", str(tmp_path / "run"),
                           "--set", "inject.injector=rules", "--set", "train.model=/no/such/model"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "/no/such/model" in "".join((proc.stderr + proc.stdout).split())
    assert not (tmp_path / "run" / "inject").exists() and time.time() - started < 60


SLOW_RUN = """
import sys, time
import seapo.data.prepare as prepare
from seapo.pipeline.config import load_run_config
from seapo.pipeline.run import run

def slow(*args, **kwargs):
    print("ready", flush=True)
    time.sleep(120)

prepare.prepare = slow
run(load_run_config(None, {"out": sys.argv[1], "inject.injector": "rules", "train.model": sys.argv[2]}))
"""


def test_a_second_run_on_the_same_folder_stops_naming_the_first(tmp_path, fake_model):
    run_dir = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(run_dir), str(fake_model)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert first.stdout.readline().strip() == "ready"
        second = subprocess.run([sys.executable, "-m", "seapo.cli", "run", "--out", str(run_dir),
                                 "--set", "inject.injector=rules", "--set", f"train.model={fake_model}"],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        text = " ".join((second.stderr + second.stdout).split())
        assert f"pid {first.pid}" in text and "another --out" in text
        assert str(run_dir) in "".join((second.stderr + second.stdout).split())  # rich may wrap the path
        assert not (run_dir / "data" / "records.jsonl").exists()
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    from seapo.outputs import folder_lock  # here: the checks above also run on code without seapo.outputs

    with folder_lock(run_dir):  # kill -9 released it
        pass
    with folder_lock(run_dir):  # and the message names whoever holds it
        other = subprocess.run([sys.executable, "-c", f"from seapo.outputs import folder_lock\n"
                                f"with folder_lock({str(run_dir)!r}): pass"], capture_output=True, text=True)
    assert other.returncode != 0 and "FolderInUse" in other.stderr and f"pid {os.getpid()}" in other.stderr


def test_stages_json_records_each_stage_key(tmp_path, fake_model, fake_train):
    run(_config(tmp_path, fake_model))
    stages = json.loads((tmp_path / "run" / "stages.json").read_text())
    assert list(stages) == ["prepare", "inject", "train"]
    for info in stages.values():
        assert len(info["key"]) == 16 and "settings" in info["inputs"]
    assert stages["inject"]["inputs"]["files"]["data/records.jsonl"]
    assert stages["train"]["inputs"]["files"]["inject/negatives.jsonl"]
    assert (tmp_path / "run" / "train" / "_complete.json").is_file()
