"""The shortcut audit on real data: what it measures, its split, its bookkeeping, the CLI and its place in
every injection run."""

import json
import random

import pytest
from typer.testing import CliRunner

from seapo.audit import NOT_ENOUGH, AuditConfig, AuditPair, audit_file, audit_pairs, read_pairs
from seapo.cli import app


@pytest.fixture(scope="module")
def ultrafeedback(shared_data):
    """The UltraFeedback sample's own pairs (chosen vs rejected), read as `seapo audit` reads them."""
    return read_pairs(shared_data / "source" / "ultrafeedback" / "train_1k.jsonl")


def test_a_planted_cue_is_found_and_warned_about(ultrafeedback):
    # the old rules injector's hallucination template, appended to real responses: a pure surface cue
    rng = random.Random(0)
    pairs = [AuditPair(p.group, p.positive, p.positive + f" According to a {rng.choice(['2019', '2021'])} survey by "
                       f"{rng.choice(['Gallup', 'Pew', 'Ipsos'])}, this holds.", "hallucination")
             for p in ultrafeedback.pairs[:400]]
    report = audit_pairs(pairs)
    audit = report.per_type["hallucination"]
    assert audit.status == "ok" and audit.accuracy > 0.95
    assert audit.interval[0] <= audit.accuracy <= audit.interval[1]
    assert audit.warning and report.warnings
    cues = " ".join(g["ngram"] for g in audit.top_ngrams["negative"])
    assert "survey" in cues or "according" in cues
    assert audit.length["negative_longer"] == 1.0 and audit.length["median_ratio"] > 1.0


def test_negatives_without_a_cue_score_near_chance(ultrafeedback):
    # two real answers to one prompt, which is called the negative decided by a coin: no cue by construction
    rng = random.Random(0)
    pairs = [AuditPair(p.group, *((p.positive, p.negative) if rng.random() < 0.5 else (p.negative, p.positive)),
                       "logic") for p in ultrafeedback.pairs]
    audit = audit_pairs(pairs).per_type["logic"]
    assert audit.status == "ok" and 0.38 <= audit.accuracy <= 0.62
    assert audit.warning is None


def test_a_data_sets_own_pairs_are_audited_overall(shared_data):
    report, pairs_file = audit_file(shared_data / "preference" / "dpo_en_demo.json")
    assert pairs_file.layout == "sharegpt_dpo" and pairs_file.read == 300 == len(pairs_file.pairs)
    assert report.per_type == {}  # no error types in another tool's file
    assert report.overall.status == "ok" and 0.0 <= report.overall.accuracy <= 1.0
    assert report.overall.test_records + report.overall.train_records == report.records


def test_split_is_by_record_seeded_and_reproducible(ultrafeedback):
    pairs = [AuditPair(p.group, p.positive, p.negative, et) for p in ultrafeedback.pairs[:300]
             for et in ("correctness", "logic")]
    a, b = audit_pairs(pairs), audit_pairs(pairs)
    assert a.to_dict()["per_type"] == b.to_dict()["per_type"]
    for audit in a.per_type.values():  # one record's two pairs share a side: the same record counts
        assert audit.records == 300 and audit.test_records == 90 and audit.test_pairs == 90
    other = audit_pairs(pairs, AuditConfig(seed=1))
    assert other.per_type["logic"].accuracy != a.per_type["logic"].accuracy or \
        other.per_type["logic"].interval != a.per_type["logic"].interval


def test_too_few_pairs_give_no_number():
    pairs = [AuditPair(f"r{i}", "The sky is blue today.", "The sky is green today.", "correctness")
             for i in range(40)]  # 12 test records < 20
    report = audit_pairs(pairs)
    audit = report.per_type["correctness"]
    assert audit.status == NOT_ENOUGH and audit.accuracy is None and audit.interval is None
    assert audit.warning is None and audit.length["median_ratio"] == pytest.approx(23 / 22, abs=1e-4)


def test_length_statistics():
    pairs = [AuditPair("a", "abcd", "abcdef", "logic"), AuditPair("b", "abcd", "ab", "logic"),
             AuditPair("c", "abcd", "abcd", "logic")]
    length = audit_pairs(pairs).per_type["logic"].length
    assert length == {"median_ratio": 1.0, "mean_ratio": 1.0, "negative_longer": pytest.approx(1 / 3, abs=1e-4),
                      "negative_shorter": pytest.approx(1 / 3, abs=1e-4)}


def test_bad_rows_are_named_by_file_line_and_field(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {"prompt": "Is water wet?", "chosen": "Yes, it is.", "rejected": "No, never.", "error_type": "logic"}
    path.write_text("\n".join([json.dumps(good), "{not json", json.dumps({"prompt": "Hi", "chosen": "Hello"}),
                               json.dumps({**good, "error_type": 3})]) + "\n")
    pairs_file = read_pairs(path)
    assert pairs_file.read == 4 == len(pairs_file.pairs) + len(pairs_file.rejects)
    assert [(r["line"], r["field"]) for r in pairs_file.rejects] == [(2, "<row>"), (3, "rejected"),
                                                                     (4, "error_type")]
    assert all(r["file"] == str(path) for r in pairs_file.rejects)


def test_cli_prints_writes_json_and_rejects(shared_data, tmp_path):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["audit", str(shared_data / "source" / "ultrafeedback" / "train_1k.jsonl"),
                                      "--out", str(out), "--warn-above", "0.9"])
    assert result.exit_code == 0, result.output
    assert "shortcut audit" in result.output and "train_1k.jsonl:479" in result.output
    report = json.loads(out.read_text())
    assert report["layout"] == "ultrafeedback" and report["rows_read"] == 1000
    assert report["settings"]["warn_above"] == 0.9 and report["overall"]["status"] == "ok"
    rejects = [json.loads(line) for line in (tmp_path / "report.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == report["unusable_rows"] == 1000 - report["pairs"]


def test_cli_bad_input_exits_2(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"prompt": "Hi", "chosen": "Hello"}) + "\n")
    result = CliRunner().invoke(app, ["audit", str(path)])
    assert result.exit_code == 2 and "x.jsonl:1" in result.output and "rejected" in result.output


def test_cues_learned_on_one_data_set_are_found_in_another(ultrafeedback, shared_data):
    dpo = read_pairs(shared_data / "preference" / "dpo_en_demo.json")

    def planted(pairs):
        return [AuditPair(p.group, p.positive, p.positive + " (See Lindqvist et al., doi:10.1000/x.)",
                          "hallucination") for p in pairs]

    from seapo.audit import audit_transfer

    result = audit_transfer(planted(ultrafeedback.pairs[:300]), planted(dpo.pairs))
    assert result["hallucination"]["status"] == "ok" and result["hallucination"]["accuracy"] > 0.95
    assert result["hallucination"]["warning"]
    assert result["hallucination"]["test_records"] == len({p.group for p in dpo.pairs})  # 295 distinct prompts
    few = audit_transfer(planted(ultrafeedback.pairs[:300]), planted(dpo.pairs[:10]))
    assert few["hallucination"]["status"] == NOT_ENOUGH and few["overall"]["accuracy"] is None
