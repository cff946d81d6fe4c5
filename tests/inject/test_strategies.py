"""Strategies plan each record's error types before injection; injection, outputs and training follow the plan."""

import json

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
    assert [(p["record_id"], p["error_type"]) for p in pairs] == [(r.id, plan[r.id][0]) for r in records]
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
