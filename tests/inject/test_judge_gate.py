"""The judge in verification: a negative is kept only when the judge finds its named error in it."""

import json
from collections.abc import Sequence

from seapo.inject.pipeline import InjectConfig, inject
from seapo.judge import Judge, JudgeItem, Verdict, verdict
from tests.inject.helpers import gsm8k_records


class FinalNumberJudge(Judge):
    """A small real judge for these tests: correctness present when the text after ``####`` differs
    from the reference's, absent when it is the same; the other types unknown."""

    name = "final-number"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def fingerprint(self) -> str:
        return "final-number|v1"

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        self.calls.append(len(items))

        def final(text: str) -> str:
            return text.rsplit("####", 1)[-1].strip()

        return [verdict(self.name, "final number", correctness="present" if final(i.response) !=
                        final(i.reference or "") else "absent") for i in items]


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_negatives_the_judge_does_not_find_the_error_in_are_retried_and_rejected(shared_data, tmp_path):
    records = gsm8k_records(shared_data, 12)
    judge = FinalNumberJudge()
    # rules logic negatives keep the final answer: this judge finds no correctness error in them,
    # and logic stays unknown, so without accept_unknown none is kept.
    config = InjectConfig(injector="rules", strategy="all", error_types=["correctness", "logic"])
    result = inject(records, tmp_path / "strict", config, judge=judge)
    pairs = _read(result.pairs_path)
    assert judge.calls and all(n <= 12 for n in judge.calls)  # judged in batches, not one by one
    assert {p["error_type"] for p in pairs} == {"correctness"}
    assert all(p["judge"]["findings"]["correctness"] == "present" for p in pairs)
    logic = result.summary["per_type"]["logic"]
    assert logic["accepted"] == 0 and logic["rejected"] == 12
    assert logic["judge_rejected"] == logic["judged_attempts"] > 0
    assert logic["judge_findings"]["unknown"] == logic["judged_attempts"]
    assert logic["failed_attempt_reasons"]["judge_unknown"] == logic["judge_rejected"]
    rejected = [r for r in _read(tmp_path / "strict" / "rejected.jsonl") if r["error_type"] == "logic"]
    assert len(rejected) == 12 and all(r["reason"] == "judge_unknown" for r in rejected)
    assert all(a["judge"]["rationale"] == "final number" for r in rejected for a in r["attempts"])
    correctness = result.summary["per_type"]["correctness"]
    assert correctness["judge_agreement"] == 1.0 and correctness["accepted"] == 12
    assert result.summary["judge"] == "final-number"

    # accept_unknown keeps the logic negatives (the judge could not decide), and is a new resume key
    lenient = config.model_copy(update={"judge": config.judge.model_copy(update={"accept_unknown": True})})
    again = inject(records, tmp_path / "strict", lenient, judge=judge)
    assert again.summary["per_type"]["logic"]["accepted"] == 12
    assert again.summary["resumed_items"] == 0


def test_judge_none_keeps_what_the_verifier_passes(shared_data, tmp_path):
    records = gsm8k_records(shared_data, 6)
    result = inject(records, tmp_path, InjectConfig(injector="rules", strategy="all", judge={"name": "none"}))
    assert result.summary["judge"] == "none" and result.summary["pairs"] == 18
    assert all(p["judge"] is None for p in _read(result.pairs_path))
    assert all(c["judged_attempts"] == 0 and c["judge_agreement"] is None
               for c in result.summary["per_type"].values())



def test_judge_model_shorthand_selects_the_llm_judge_and_refuses_contradictions():
    import pytest

    from seapo.inject.pipeline import build_judge
    from seapo.judge.config import JudgeConfig
    from seapo.judge.llm import LLMJudge

    config = InjectConfig().updated({"judge.model": "embedded"})  # what --judge-model embedded sets
    assert config.judge.name == "llm" and config.judge.llm["backend"]["model"] == "embedded"
    judge = build_judge(config.judge)
    assert any(isinstance(j, LLMJudge) for j in getattr(judge, "judges", [judge]))
    assert JudgeConfig(**config.judge.model_dump()) == config.judge  # a dumped config reads back the same
    for bad, says in [({"name": "none", "model": "m"}, "'none'"),
                      ({"model": "a", "llm": {"backend": {"model": "b"}}}, "give one of them")]:
        with pytest.raises(ValueError, match=says):
            JudgeConfig(**bad)
