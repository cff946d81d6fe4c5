"""Strategies plan each record's error types before injection; injection, outputs and training follow the plan."""

import json

import pytest

from seapo.inject.error_types import ErrorType
from seapo.inject.pipeline import InjectConfig, inject
from seapo.inject.rules import RulesInjector
from seapo.inject.strategies import STRATEGIES, Strategy, make_strategy
from tests.inject.helpers import gsm8k_records, tiny_llm


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


class CountingRules(RulesInjector):
    """The rules injector, remembering every (record, type) it was asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, str]] = []

    def inject(self, records, error_type, *, attempt=0, progress=None):
        self.asked += [(r.id, ErrorType(error_type).value) for r in records]
        return super().inject(records, error_type, attempt=attempt, progress=progress)


def test_mixed_generates_exactly_one_negative_per_record(shared_data, tmp_path):
    records = gsm8k_records(shared_data, 30)
    counting = CountingRules()
    result = inject(records, tmp_path, InjectConfig(injector="rules", strategy="mixed", seed=5), injector=counting)
    asked = set(counting.asked)
    assert len(asked) == len(records) and {rid for rid, _ in asked} == {r.id for r in records}
    plan = {row["record_id"]: row["error_types"] for row in _read(tmp_path / "plan.jsonl")}
    assert all(plan[rid] == [et] for rid, et in asked)  # the injector made what the plan says, nothing else
    pairs = _read(result.pairs_path)
    made = [(p["record_id"], p["error_type"]) for p in pairs]
    assert made == [k for k in ((r.id, plan[r.id][0]) for r in records) if k in set(made)]  # in plan order
    assert _read(result.negatives_path) == pairs
    assert sum(c["planned"] for c in result.summary["per_type"].values()) == len(records)


def test_plan_is_seeded_per_record_and_independent_of_order():
    from seapo.data.schema import Record

    records = [Record(prompt=[{"role": "user", "content": f"q{i}"}], response=f"a{i}") for i in range(40)]
    mixed = make_strategy("mixed")
    plan = mixed.plan(records, list(ErrorType), seed=1)
    assert plan == mixed.plan(records[::-1], list(ErrorType), seed=1)
    assert plan != mixed.plan(records, list(ErrorType), seed=2)
    assert {t for types in plan.values() for t in types} == set(ErrorType)
    assert make_strategy("all").plan(records[:1], list(ErrorType), 0) == {records[0].id: list(ErrorType)}


def test_fallback_stays_within_the_planned_type(shared_data, tmp_path, tiny_model, monkeypatch):
    asked = []
    real = RulesInjector.inject

    def spy(self, records, error_type, **kwargs):
        asked.extend((r.id, ErrorType(error_type).value) for r in records)
        return real(self, records, error_type, **kwargs)

    monkeypatch.setattr(RulesInjector, "inject", spy)
    records = gsm8k_records(shared_data, 6)
    result = inject(records, tmp_path, InjectConfig(strategy="mixed", max_attempts=1, llm=tiny_llm(tiny_model)))
    plan = {row["record_id"]: row["error_types"] for row in _read(tmp_path / "plan.jsonl")}
    assert asked and all(plan[rid] == [et] for rid, et in asked)
    for p in _read(result.pairs_path):
        assert p["fallback"] and [p["error_type"]] == plan[p["record_id"]]


@STRATEGIES.register("test-logic-only")
class LogicOnly(Strategy):
    """A third-party strategy: one class, registered by name, nothing else edited."""

    def plan(self, records, error_types, seed):
        return {r.id: [ErrorType.LOGIC] for r in records}


def test_a_registered_strategy_is_usable_by_name(shared_data, tmp_path):
    records = gsm8k_records(shared_data, 10)
    result = inject(records, tmp_path, InjectConfig(injector="rules", strategy="test-logic-only"))
    assert {p["error_type"] for p in _read(result.pairs_path)} == {"logic"}
    assert result.summary["per_type"]["correctness"]["planned"] == 0
    assert "test-logic-only" in STRATEGIES.names()


# ------------------------------------------------------------------ profile-driven strategies
def _profile_file(path, shares, erroneous=100):
    path.write_text(json.dumps({"erroneous": erroneous, "distribution": {
        t: {"share": s, "low": None, "high": None} for t, s in shares.items()}}))
    return path


def _synthetic(n):
    from seapo.data.schema import Record

    return [Record([{"role": "user", "content": f"question {i}"}], f"answer {i}") for i in range(n)]


def test_profile_plan_reproduces_the_target_distribution_and_is_seeded(tmp_path):
    from seapo.inject.error_types import ALL_ERROR_TYPES
    from seapo.inject.strategies import target_distribution

    path = _profile_file(tmp_path / "profile.json", {"correctness": 0.7, "logic": 0.3, "hallucination": 0.0})
    records = _synthetic(4000)
    strategy = make_strategy("profile", {"profile": str(path), "floor": 0.1})
    plan = strategy.plan(records, ALL_ERROR_TYPES, seed=3)
    target = target_distribution({ErrorType(t): s for t, s in
                                  {"correctness": 0.7, "logic": 0.3, "hallucination": 0.0}.items()},
                                 ALL_ERROR_TYPES, 0.1)
    assert target == pytest.approx({ErrorType.CORRECTNESS: 0.59, ErrorType.LOGIC: 0.31,
                                    ErrorType.HALLUCINATION: 0.1})  # the floor keeps hallucination alive
    described = strategy.describe(plan)
    # Tolerance: 0.025 absolute, over 3 binomial standard deviations at n = 4000 (sd <= 0.0079).
    for t in ALL_ERROR_TYPES:
        assert abs(described["realised"][t.value] - target[t]) < 0.025, (t, described)
    assert described["target"] == {t.value: round(target[t], 4) for t in ALL_ERROR_TYPES}
    # Seeded and per record: the same seed gives the same plan, in any order and on any subset.
    again = make_strategy("profile", {"profile": str(path), "floor": 0.1})
    assert again.plan(list(reversed(records[:500])), ALL_ERROR_TYPES, seed=3) == {r.id: plan[r.id]
                                                                                  for r in records[:500]}
    other = strategy.plan(records, ALL_ERROR_TYPES, seed=4)
    assert sum(other[r.id] != plan[r.id] for r in records) > 1000


def test_profile_floor_restricted_types_and_top(tmp_path):
    path = _profile_file(tmp_path / "profile.json", {"correctness": 0.2, "logic": 0.5, "hallucination": 0.3})
    records = _synthetic(300)
    two = [ErrorType.CORRECTNESS, ErrorType.HALLUCINATION]
    plan = make_strategy("profile", {"profile": str(path), "floor": 0.0}).plan(records, two, 0)
    assert {t for types in plan.values() for t in types} <= set(two)  # only the configured types
    top = make_strategy("top", {"profile": str(path)})
    assert set(map(tuple, top.plan(records, list(ErrorType), 0).values())) == {(ErrorType.LOGIC,)}
    assert top.describe(top.plan(records, two, 0))["target"] == {"correctness": 0.0, "hallucination": 1.0}
    with pytest.raises(ValueError, match="floor"):
        make_strategy("profile", {"profile": str(path), "floor": 0.4}).check(list(ErrorType))
    with pytest.raises(ValueError, match="floor"):
        make_strategy("profile", {"profile": str(path), "floor": "lots"})


@pytest.mark.parametrize("content, match", [
    (None, "no profile file"),
    ("{not json", "not a readable JSON profile"),
    ('{"counts": {}}', "no 'distribution'"),
    ('{"erroneous": 0, "distribution": {"correctness": {"share": null}, "logic": {"share": null}, '
     '"hallucination": {"share": null}}}', "no erroneous answer"),
    ('{"erroneous": 3, "distribution": {"correctness": {"share": 2}, "logic": {"share": 0}, '
     '"hallucination": {"share": 0}}}', "in \\[0, 1\\]"),
])
def test_a_missing_or_invalid_profile_is_an_error_naming_the_file(tmp_path, content, match):
    from seapo.errors import InputError

    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=match) as err:
        make_strategy("profile", {"profile": str(path)}).plan(_synthetic(3), list(ErrorType), 0)
    assert err.value.path == str(path)
    with pytest.raises(InputError, match="needs a profile"):
        make_strategy("top").plan(_synthetic(3), list(ErrorType), 0)


def test_inject_with_the_profile_strategy_writes_target_and_realised_into_the_summary(shared_data, tmp_path):
    path = _profile_file(tmp_path / "profile.json", {"correctness": 0.6, "logic": 0.4, "hallucination": 0.0})
    records = gsm8k_records(shared_data, 40)
    config = InjectConfig(injector="rules", strategy="profile", strategy_options={"profile": str(path)}, seed=1)
    result = inject(records, tmp_path / "out", config)
    plan = result.summary["plan"]
    assert plan["target"] == {"correctness": 0.56, "hallucination": 0.05, "logic": 0.39}  # 0.05 + 0.85 x share
    assert sum(plan["planned"].values()) == 40 and set(plan["realised"]) <= {"correctness", "logic", "hallucination"}
    assert sum(c["planned"] for c in result.summary["per_type"].values()) == 40
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["plan"] == plan


def test_inject_cli_takes_the_profile_and_names_a_missing_one(shared_data, tmp_path):
    import subprocess
    import sys

    from tests.inject.helpers import write_records

    records = write_records(tmp_path / "records.jsonl", gsm8k_records(shared_data, 6))
    path = _profile_file(tmp_path / "profile.json", {"correctness": 0.0, "logic": 1.0, "hallucination": 0.0})
    base = [sys.executable, "-m", "seapo.cli", "inject", str(records), "--injector", "rules"]
    ok = subprocess.run([*base, "--out", str(tmp_path / "a"), "--strategy", "top", "--profile", str(path)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["plan"]["planned"] == {"logic": 6}
    missing = subprocess.run([*base, "--out", str(tmp_path / "b"), "--strategy", "profile", "--profile",
                              str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.json" in missing.stderr and "seapo profile" in missing.stderr
