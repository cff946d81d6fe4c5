"""Judges combined in order (fallback and all), and make_judge."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from seapo.errors import InputError
from seapo.judge import JUDGES, Judge, JudgeItem, Verdict, verdict
from seapo.judge.combined import CombinedJudge, make_judge
from seapo.judge.reference import ReferenceJudge

SOLUTION = "Tom has 3 * 4 = 12 apples.\nHe eats 2, so 12 - 2 = 10 are left.\n#### 10"


class Recording(Judge):
    """A second judge that says 'present' for every type and records what it was asked (a stand-in
    for the LLM judge, whose own tests live with it)."""

    name = "second"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[JudgeItem] = []

    def fingerprint(self) -> str:
        return "second|v1"

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        self.seen += items
        return [verdict(self.name, "says present", {"text": "raw"}, default="present") for _ in items]


ITEMS = [
    JudgeItem("q", SOLUTION.replace("#### 10", "#### 11"), SOLUTION),  # correctness present, rest unknown
    JudgeItem("q", SOLUTION.split("\n")[0], SOLUTION),  # truncation: all absent, nothing left
    JudgeItem("q", SOLUTION, SOLUTION),  # identical
]


def test_fallback_asks_the_next_judge_only_for_what_is_unknown() -> None:
    second = Recording()
    combined = CombinedJudge([ReferenceJudge(), second])
    out = combined.judge(ITEMS)
    assert [item.response for item in second.seen] == [ITEMS[0].response]
    first = out[0]
    assert first.finding("correctness") == "present"
    assert first.details["decided_by"] == {"correctness": "reference", "logic": "second", "hallucination": "second"}
    assert first.raw["second"] == {"text": "raw"} and "second: says present" in first.rationale
    assert out[1].clean and out[2].clean and out[1].details["decided_by"]["logic"] == "reference"
    assert combined.fingerprint().startswith("combined|fallback|reference|v")


def test_all_asks_every_judge_and_keeps_their_findings_side_by_side() -> None:
    second = Recording()
    out = CombinedJudge([ReferenceJudge(), second], mode="all").judge(ITEMS)
    assert len(second.seen) == 3
    # the first decisive judge still wins per type
    assert out[1].clean
    assert out[1].details["judges"]["second"]["findings"] == dict.fromkeys(("correctness", "logic", "hallucination"),
                                                                           "present")
    assert out[1].details["judges"]["reference"]["findings"]["logic"] == "absent"


def test_the_evidence_outcome_stays_visible() -> None:
    details = {"perturbation": "final_answer", "edits": [{"perturbation": "final_answer", "span": [68, 70],
                                                          "original": "10", "replacement": "11"}]}
    item = JudgeItem("q", SOLUTION[:68] + "11", SOLUTION, claimed="correctness", evidence=details)
    out = CombinedJudge([ReferenceJudge(), Recording()]).judge([item])[0]
    assert out.details["evidence"] == "confirmed"


def test_make_judge() -> None:
    assert make_judge("none") is None
    assert isinstance(make_judge("reference"), ReferenceJudge)
    second = Recording()
    llm = make_judge("llm", llm=second)
    assert isinstance(llm, CombinedJudge) and llm.judges[1] is second and llm.mode == "fallback"
    with pytest.raises(InputError, match="unknown judge"):
        make_judge("oracle")


@pytest.mark.skipif("llm" in JUDGES, reason="the LLM judge is registered")
def test_make_judge_llm_without_the_llm_judge_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no judge is registered as 'llm'"):
        make_judge("llm")


def test_bad_combinations() -> None:
    with pytest.raises(ValueError):
        CombinedJudge([])
    with pytest.raises(ValueError):
        CombinedJudge([ReferenceJudge()], mode="vote")  # type: ignore[arg-type]
