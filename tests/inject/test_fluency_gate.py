"""The fluency gate inside `seapo inject`: scored after the judge, broken edits become failed attempts."""

import json

from seapo.inject.fluency import FluencyConfig, FluencyGate
from seapo.inject.pipeline import InjectConfig, inject
from tests.inject.helpers import gsm8k_records


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _config(model, max_drop):
    return InjectConfig(injector="rules", strategy="all", max_attempts=1, show_progress=False,
                        fluency=FluencyConfig(enabled=True, model=str(model), dtype="fp32", max_drop=max_drop))


def test_the_gate_scores_every_judged_negative_and_rejects_those_above_its_threshold(shared_data, tmp_path,
                                                                                       tiny_model):
    # A tiny random scorer gives arbitrary but deterministic drops: enough to test the wiring.
    records = gsm8k_records(shared_data, 8)
    lenient = inject(records, tmp_path / "lenient", _config(tiny_model, 1e6)).summary
    pairs = _read(tmp_path / "lenient" / "pairs.jsonl")
    assert pairs and lenient["fluency"]["max_drop"] == 1e6
    for counts in lenient["per_type"].values():
        assert counts["fluency_rejected"] == 0
        assert counts["fluency_scored"] == counts["judge_findings"]["present"]  # only what the judge passed
    # The drop a pair row records is the gate's own figure on that pair.
    with FluencyGate(FluencyConfig(model=str(tiny_model), dtype="fp32")) as gate:
        drops = gate.drops([(p["chosen"]["content"], p["rejected"]["content"]) for p in pairs])
    assert [p["fluency"] for p in pairs] == drops

    threshold = sorted(d for d in drops if d is not None)[len(drops) // 2]
    strict = inject(records, tmp_path / "strict", _config(tiny_model, threshold)).summary
    kept = _read(tmp_path / "strict" / "pairs.jsonl")
    assert 0 < len(kept) < len(pairs) and all(p["fluency"] <= threshold for p in kept)
    assert {p["id"] for p in kept} == {p["id"] for p, d in zip(pairs, drops, strict=True) if d <= threshold}
    rejected = _read(tmp_path / "strict" / "rejected.jsonl")
    disfluent = [r for r in rejected if r["attempts"][-1]["reason"] == "disfluent"]
    assert len(disfluent) == len(pairs) - len(kept) == sum(c["fluency_rejected"] for c in strict["per_type"].values())
    assert all(r["attempts"][-1]["fluency"] > threshold for r in disfluent)
    # Other gate settings are another resume key: the strict run did not reuse the lenient one's items.
    assert strict["resumed_items"] == 0 and strict["settings_key"] != lenient["settings_key"]


def test_the_gate_is_off_by_default(shared_data, tmp_path):
    records = gsm8k_records(shared_data, 4)
    summary = inject(records, tmp_path / "off", InjectConfig(injector="rules", show_progress=False)).summary
    assert summary["fluency"] == "off"
    assert all(c["fluency_scored"] == 0 for c in summary["per_type"].values())
