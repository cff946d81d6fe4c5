"""`negatives: source` (the vanilla baseline: a data set's own rejected responses) and `train.heldout_pairs`
(held-out sets given as files, so several runs score the same pairs), on real UltraFeedback rows."""

import json

import pytest

from seapo.data.prepare import PrepareConfig, prepare
from seapo.data.schema import read_records
from seapo.errors import InputError
from seapo.inject.source import SOURCE_TYPE, source_negatives
from seapo.io import read_jsonl
from seapo.pipeline.config import load_run_config
from seapo.pipeline.run import run
from seapo.train.config import TrainConfig
from seapo.train.trainer import load_data


@pytest.fixture(scope="module")
def ultrafeedback_records(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("uf") / "records.jsonl"
    prepare(out=out, config=PrepareConfig(
        source=str(shared_data / "source" / "ultrafeedback" / "train_1k.jsonl"), limit=40, progress=False))
    return out


def test_source_negatives_are_the_rows_own_rejected(ultrafeedback_records, tmp_path):
    records = {r.id: r for r in read_records(ultrafeedback_records)}
    # one record without a rejected response and one whose rejected equals its chosen: both must be listed
    rows = [json.loads(line) for line in ultrafeedback_records.read_text().splitlines()]
    rows[0]["rejected"], rows[1]["rejected"] = None, rows[1]["response"]
    edited = tmp_path / "records.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = source_negatives(edited, tmp_path / "inject")
    pairs = read_jsonl(tmp_path / "inject" / "pairs.jsonl")
    rejects = read_jsonl(tmp_path / "inject" / "rejected.jsonl")
    assert {p["record_id"] for p in pairs} | {r["record_id"] for r in rejects} == set(records)  # nothing lost
    assert {r["record_id"]: r["reason"] for r in rejects} == {
        rows[0]["id"]: "no_source_rejected", rows[1]["id"]: "source_rejected_equals_chosen"}
    for p in pairs:
        record = records[p["record_id"]]
        assert p["chosen"]["content"] == record.response and p["rejected"]["content"] == record.rejected
        assert p["error_type"] == SOURCE_TYPE
    assert summary["pairs"] == len(pairs) == len(records) - 2 and summary["rejected_items"] == 2
    assert summary["shortcut_audit"]["per_type"][SOURCE_TYPE]  # the audit's peer figure: a data set's own pairs
    # an inject output set: train reads it (and would refuse it half-written)
    assert json.loads((tmp_path / "inject" / "_complete.json").read_text())["stage"] == "inject"


def test_heldout_pairs_files_are_scored_and_never_trained(ultrafeedback_records, tmp_path):
    source_negatives(ultrafeedback_records, tmp_path / "source")
    pairs = read_jsonl(tmp_path / "source" / "pairs.jsonl")
    held_file = tmp_path / "held.jsonl"
    held_file.write_text("".join(json.dumps(p) + "\n" for p in pairs[:10]))
    cfg = TrainConfig(heldout_fraction=0.0, heldout_pairs=[str(held_file)])
    data = load_data(tmp_path / "source" / "pairs.jsonl", cfg)
    held = {p["record_id"] for p in pairs[:10]}
    assert {p.record_id for p in data.held_pairs} == held
    assert not held & {p.record_id for p in data.train_pairs}
    assert len(data.train_pairs) == len(pairs) - 10
    # with a fraction too: both held-out sets, each pair once, still disjoint from training
    data = load_data(tmp_path / "source" / "pairs.jsonl", cfg.updated(heldout_fraction=0.2))
    assert held < {p.record_id for p in data.held_pairs}
    assert len({p.id for p in data.held_pairs}) == len(data.held_pairs)
    assert not {p.record_id for p in data.held_pairs} & {p.record_id for p in data.train_pairs}


def test_run_with_source_negatives_trains_the_vanilla_baseline(shared_data, ultrafeedback_records, tmp_path,
                                                               tiny_model):
    # held-out pairs given as a file: injected-style rows of other records, scored beside the source pairs
    held = tmp_path / "held.jsonl"
    source_negatives(ultrafeedback_records, tmp_path / "held_src")
    held_rows = read_jsonl(tmp_path / "held_src" / "pairs.jsonl")[:6]
    held.write_text("".join(json.dumps({**r, "id": r["id"] + "-h", "error_type": "correctness"}) + "\n"
                            for r in held_rows))
    config = load_run_config(None, {
        "out": str(tmp_path / "run"), "negatives": "source",
        "prepare.source": str(shared_data / "source" / "ultrafeedback" / "train_1k.jsonl"), "prepare.limit": 40,
        "train.model": str(tiny_model), "train.max_steps": 2, "train.batch_size": 4, "train.max_length": 256,
        "train.learning_rate": 1e-3, "train.heldout_fraction": 0.2, "train.heldout_pairs": [str(held)]})
    result = run(config)
    report = result.report.read_text()
    assert "## Negatives: the source's own rejected responses" in report and "## Injection" not in report
    heldout = json.loads((tmp_path / "run" / "train" / "heldout.json").read_text())
    assert set(heldout["before"]["per_error_type"]) == {SOURCE_TYPE, "correctness"}
    assert result.stages["train"]["global_step"] == 2
    # the held-out file is part of the train stage's key: changing it is noticed, not silently reused
    held.write_text("".join(json.dumps({**r, "id": r["id"] + "-h", "error_type": "logic"}) + "\n"
                            for r in held_rows))
    with pytest.raises(InputError, match="held.jsonl changed"):
        run(config)


def test_source_negatives_cannot_be_profiled():
    with pytest.raises(InputError, match="no injection for a profile"):
        load_run_config(None, {"negatives": "source", "profile": {}})
