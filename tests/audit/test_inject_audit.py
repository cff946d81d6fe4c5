"""The shortcut audit in every injection run: summary.json's shortcut_audit."""

import json

from seapo.audit import AuditConfig, audit_file
from seapo.data.prepare import prepare
from seapo.inject.pipeline import InjectConfig, inject


def test_injection_summary_holds_the_audit_of_its_pairs(shared_data, tmp_path):
    records = tmp_path / "records.jsonl"
    prepare(shared_data / "preference" / "dpo_en_demo.json", out=records)
    # rules v4 makes logic negatives for ~22% of the demo's records (~19 test records at the default
    # split): the audit of every type must run here, so the floor is lowered, not the data grown
    result = inject(records, tmp_path / "run", InjectConfig(injector="rules", strategy="all",
                                                            audit=AuditConfig(min_test_records=10)))
    audit = json.loads((tmp_path / "run" / "summary.json").read_text())["shortcut_audit"]
    assert set(audit["per_type"]) == {"correctness", "logic", "hallucination"}
    for name, scope in audit["per_type"].items():
        assert scope["pairs"] == result.summary["per_type"][name]["accepted"]
        assert scope["status"] == "ok" and scope["interval"][0] <= scope["accuracy"] <= scope["interval"][1]
        assert (scope["warning"] is not None) == (scope["accuracy"] > 0.65)
        assert scope["top_ngrams"]["negative"] and scope["length"]["median_ratio"] > 0
    # the same figures as `seapo audit` on the run's own pairs.jsonl
    again, _ = audit_file(result.pairs_path, AuditConfig(min_test_records=10))
    assert again.to_dict()["per_type"] == audit["per_type"]


def test_tiny_runs_say_not_enough_and_the_audit_can_be_switched_off(shared_data, tmp_path):
    records = tmp_path / "records.jsonl"
    prepare(shared_data / "preference" / "dpo_en_demo.json", out=records, limit=8)
    summary = inject(records, tmp_path / "a", InjectConfig(injector="rules", strategy="all")).summary
    assert {s["status"] for s in summary["shortcut_audit"]["per_type"].values()} == {"not enough pairs"}
    off = inject(records, tmp_path / "b", InjectConfig(injector="rules", strategy="all",
                                                       audit=AuditConfig(shortcut_audit=False))).summary
    assert "shortcut_audit" not in off
