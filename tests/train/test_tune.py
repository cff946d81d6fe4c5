"""``seapo tune``: the held-out records never reach it, each grid point is trained on the fit part and
scored on the validation part, the choice follows its documented rule, and a killed tune resumes
without redoing finished points. Real tiny-model trainings through TRL on real injected pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import seapo.train.trainer as trainer_module
from seapo.cli import app
from seapo.errors import ConfigError
from seapo.fingerprint import file_digest
from seapo.io import read_jsonl, write_jsonl
from seapo.train.config import TrainConfig
from seapo.train.data import load_preferences, preference_rows, split_heldout
from seapo.train.tune import TuneConfig, _inputs, choose, tune, write_training_records

QUICK = dict(  # max_length 1024: every edit within it, no pair dropped for differing past the cut
    algo="simpo", epochs=1, batch_size=2, per_device_batch_size=2, max_length=1024, merge=False,
    heldout_fraction=0.25)


def _heldout_ids(pairs: Path, base: TrainConfig) -> set[str]:
    _, held = split_heldout(load_preferences(pairs).groups, base.heldout_fraction, base.seed)
    return {g.record_id for g in held}


@pytest.mark.parametrize("layout", ["pairs", "kto"])
def test_preference_rows_read_back_as_the_same_groups(demo_negatives, tmp_path, layout):
    groups = load_preferences(demo_negatives).groups
    if layout == "kto":  # a record without negatives and one without a positive: KTO's unpaired rows
        groups[0].negatives, groups[1].chosen = [], None
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, preference_rows(groups, layout))
    back = load_preferences(path)
    assert back.layout == layout and back.groups == groups


def test_the_grid_takes_train_fields_except_those_that_decide_the_splits():
    cfg = TuneConfig(grid={"learning_rate": [1e-4, 1e-3], "epochs": [1, 2], "focus": ["full", "divergent"]})
    points = cfg.points()
    assert len(points) == 8 and points[0] == {"learning_rate": 1e-4, "epochs": 1, "focus": "full"}
    assert points[1] == {"learning_rate": 1e-4, "epochs": 1, "focus": "divergent"}  # the last field varies fastest
    for grid, message in (({"seed": [1, 2]}, "cannot be tuned"), ({"heldout_fraction": [0.1]}, "cannot be tuned"),
                          ({"leraning_rate": [1e-4]}, "cannot be tuned"), ({"epochs": []}, "distinct values"),
                          ({"epochs": [1, 1]}, "distinct values"), ({}, "empty")):
        with pytest.raises(ConfigError, match=message) as err:
            TuneConfig(grid=grid)
        assert err.value.field == "grid"


def test_a_bad_grid_value_stops_before_anything_is_trained(demo_negatives, tmp_path):
    cfg = TuneConfig(pairs=str(demo_negatives), out=str(tmp_path / "t"), grid={"learning_rate": [1e-4, -1.0]})
    with pytest.raises(ConfigError, match="grid point") as err:
        tune(cfg)
    assert err.value.field == "grid.learning_rate" and not (tmp_path / "t").exists()


def test_a_run_config_gives_the_base_and_the_input(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "inject").mkdir(parents=True)
    (run_dir / "inject" / "negatives.jsonl").write_text("")
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text(f"out: {run_dir}\ntrain:\n  learning_rate: 5.0e-4\n  heldout_fraction: 0.2\n  epochs: 1\n")
    pairs, base = _inputs(TuneConfig(run_config=str(yaml_path), train=TrainConfig(epochs=2, max_steps=3)))
    assert pairs == run_dir / "inject" / "negatives.jsonl"
    # seapo run trains with pairing all; the run's section is the base; what this config sets wins.
    assert (base.pairing, base.learning_rate, base.heldout_fraction, base.epochs, base.max_steps) == \
           ("all", 5e-4, 0.2, 2.0, 3)
    with pytest.raises(ConfigError, match="training input"):
        _inputs(TuneConfig())


def _point(index, accuracy, margin, wins):
    """A tune.json point whose validation pairs p0.. have these wins (1, 0 or 0.5), one record each."""
    pairs = [{"id": f"p{i}", "record_id": f"r{i}", "implicit_reward_margin": {1: 1.0, 0: -1.0, 0.5: 0.0}[w],
              "divergent_span_margin": None} for i, w in enumerate(wins)]
    return {"index": index, "settings": {"learning_rate": index}, "pairs": pairs,
            "validation": {"after": {"implicit_reward": {"accuracy": accuracy, "accuracy_ci": [0.0, 1.0],
                                                         "mean_margin": margin, "n": len(wins)}}}}


def test_choose_takes_the_best_accuracy_then_margin_then_the_earlier_point_and_says_if_it_is_separated():
    a = _point(0, 0.5, 0.1, [1, 0] * 10)
    b = _point(1, 0.9, 0.2, [1] * 18 + [0, 0])
    c = _point(2, 0.9, 0.3, [1] * 18 + [0, 0])
    choice = choose([a, b, c], "implicit_reward")
    assert choice["index"] == 2  # ties b on accuracy, higher margin
    assert choice["accuracy"] == 0.9 and choice["validation_pairs"] == 20
    vs = {v["index"]: v for v in choice["versus"]}
    assert vs[0]["accuracy_delta"] == pytest.approx(0.4) and vs[0]["separated"]  # 40 points better, CI above 0
    assert vs[1]["accuracy_delta"] == 0 and not vs[1]["separated"]  # the same wins: not shown better
    assert not choice["separated"] and choice["not_separated"] == [b["settings"]]
    twin = _point(3, 0.9, 0.3, [1] * 18 + [0, 0])
    assert choose([c, twin], "implicit_reward")["index"] == 2  # an exact tie: the earlier grid point


def _tune_cli(pairs: Path, out: Path, tiny_model: Path, learning_rates: str):
    args = ["tune", str(pairs), "--out", str(out), "--model", str(tiny_model), "--validation-fraction", "0.34",
            "--set", f"grid.learning_rate={learning_rates}", *(f"--set=train.{k}={v}" for k, v in QUICK.items())]
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    return json.loads((out / "tune.json").read_text())


def test_tune_trains_on_the_fit_part_scores_validation_and_never_sees_heldout(
        demo_negatives, tiny_model, tmp_path, monkeypatch):
    base = TrainConfig(model=str(tiny_model), **QUICK)
    held = _heldout_ids(demo_negatives, base)
    assert len(held) == 3  # 12 records, 25% held out
    out = tmp_path / "tune"
    report = _tune_cli(demo_negatives, out, tiny_model, "[5.0e-3]")

    # The held-out records are gone before anything trains or scores.
    records = out / "training_records.jsonl"
    seen = {r["record_id"] for r in read_jsonl(records)}
    assert len(seen) == 9 and not seen & held and report["heldout"]["records_removed"] == 3
    assert report["training_records"]["sha256"] == file_digest(records)
    (point,) = report["points"]
    assert point["settings"] == {"learning_rate": 5e-3}
    heldout = json.loads((Path(point["dir"]) / "heldout.json").read_text())  # the point's validation scoring
    validation = {d["record_id"] for d in heldout["after"]["details"]}
    fit = json.loads((Path(point["dir"]) / "settings.json").read_text())
    assert len(validation) == 3 and not validation & held and fit["config"]["learning_rate"] == 5e-3
    assert point["fit_pairs"] == 6 and point["validation"]["after"]["implicit_reward"]["n"] == 9
    assert {d["record_id"] for d in point["pairs"]} == validation
    assert not (Path(point["dir"]) / "checkpoints").exists()  # recorded: resume state removed
    assert report["choice"]["index"] == 0 and report["choice"]["versus"] == []
    assert isinstance(report["command"], list) and report["metric"] == "implicit_reward"

    # Changing only the held-out records changes nothing the tune uses.
    rows = read_jsonl(demo_negatives)
    for row in rows:
        if row["record_id"] in held:
            row["rejected"] = {"role": "assistant", "content": "A different negative entirely."}
    write_jsonl(tmp_path / "changed.jsonl", rows)
    again, _ = write_training_records(tmp_path / "changed.jsonl", base, tmp_path / "again.jsonl")
    assert file_digest(again) == file_digest(records)

    # The same tune again: nothing is retrained, the same figures come back.
    monkeypatch.setattr(trainer_module, "train", lambda *a, **k: pytest.fail("a finished point was retrained"))
    assert _tune_cli(demo_negatives, out, tiny_model, "[5.0e-3]")["points"] == report["points"]


@pytest.mark.slow
def test_a_killed_tune_resumes_without_redoing_finished_points(demo_negatives, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "tune"
    report = _tune_cli(demo_negatives, out, tiny_model, "[1.0e-3, 5.0e-3]")
    assert [p["settings"] for p in report["points"]] == [{"learning_rate": 1e-3}, {"learning_rate": 5e-3}]
    assert report["points"][0]["validation"]["after"] != report["points"][1]["validation"]["after"]
    best = max(report["points"], key=lambda p: (p["validation"]["after"]["implicit_reward"]["accuracy"],
                                                p["validation"]["after"]["implicit_reward"]["mean_margin"]))
    assert report["choice"]["index"] == best["index"] and len(report["choice"]["versus"]) == 1

    # A third point, killed mid-training: the rerun trains only that one.
    calls = []
    real_train = trainer_module.train

    def counting_train(pairs, cfg, **kw):
        calls.append(cfg.learning_rate)
        if len(calls) == 1:
            raise KeyboardInterrupt  # the kill, mid-point
        return real_train(pairs, cfg, **kw)

    monkeypatch.setattr(trainer_module, "train", counting_train)
    cfg = TuneConfig(pairs=str(demo_negatives), out=str(out), validation_fraction=0.34,
                     train=TrainConfig(model=str(tiny_model), **QUICK), grid={"learning_rate": [1e-3, 5e-3, 2e-3]})
    with pytest.raises(KeyboardInterrupt):
        tune(cfg)
    partial = json.loads((out / "tune.json").read_text())
    assert [p["settings"] for p in partial["points"]] == [{"learning_rate": 1e-3}, {"learning_rate": 5e-3}]
    assert partial["choice"] is None
    resumed = tune(cfg)
    assert calls == [2e-3, 2e-3]  # the two finished points were not redone
    # A shorter grid later keeps the third point's result: back to three, nothing trains.
    tune(cfg.updated(grid={"learning_rate": [1e-3]}))
    assert tune(cfg).points == resumed.points and calls == [2e-3, 2e-3]
    assert [p["index"] for p in resumed.points] == [0, 1, 2] and len(resumed.choice["versus"]) == 2
    assert resumed.points[0]["validation"] == report["points"][0]["validation"]


def test_a_training_does_not_depend_on_what_ran_before_in_the_process(pairs_subset, tiny_config):
    """Tune points train one after another in one process: each must be the run its settings give,
    whatever trained before it (the LoRA initialisation and data order follow the seed alone)."""
    import torch
    from safetensors.torch import load_file

    from seapo.train.trainer import train

    pairs = pairs_subset(4)
    common = dict(algo="simpo", max_steps=2, batch_size=2, per_device_batch_size=2, learning_rate=5e-3)
    first = train(pairs, tiny_config("first", **common))
    torch.rand(1000)  # whatever else the process did in between
    second = train(pairs, tiny_config("second", **common))
    a, b = (load_file(Path(r.adapter_dir) / "adapter_model.safetensors") for r in (first, second))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = train(pairs, tiny_config("other", seed=7, **common))
    c = load_file(Path(other.adapter_dir) / "adapter_model.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the seed decides it


def test_heldout_pairs_files_are_removed_and_never_scored_by_the_points(demo_negatives, tmp_path):
    from seapo.train.tune import _point_config

    rows = read_jsonl(demo_negatives)
    given = {r["record_id"] for r in rows[:4]}
    write_jsonl(tmp_path / "held.jsonl", rows[:4])
    base = TrainConfig(heldout_fraction=0.0, heldout_pairs=[str(tmp_path / "held.jsonl")])
    records, removed = write_training_records(demo_negatives, base, tmp_path / "records.jsonl")
    kept = {r["record_id"] for r in read_jsonl(records)}
    assert removed == len(given) and not kept & given and kept == {r["record_id"] for r in rows} - given
    point = _point_config(base, {"learning_rate": 1e-3}, 0.25)
    assert point.heldout_pairs == [] and point.heldout_fraction == 0.25  # the choice reads validation alone
