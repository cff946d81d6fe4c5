"""Rules evidence on real rules-injector output (GSM8K and UltraFeedback), and tampered records."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from seapo.inject.error_types import ErrorType
from seapo.inject.rules import RulesInjector
from seapo.judge import JudgeItem
from seapo.judge.evidence import check_evidence
from seapo.judge.reference import ReferenceJudge


def _rows(shared_data: Path, n: int) -> list[tuple[str, str]]:
    out = []
    with open(shared_data / "source/gsm8k/train.jsonl", encoding="utf-8") as f:
        out += [(r["question"], r["answer"]) for r in (json.loads(next(f)) for _ in range(n))]
    with open(shared_data / "source/ultrafeedback/train_1k.jsonl", encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(n + 5)]
    out += [(r["prompt"], r["chosen"]) for r in rows if r["chosen"].strip()][:n]
    return out


@pytest.fixture(scope="module")
def negatives(shared_data: Path) -> list[tuple[str, str, ErrorType, object]]:
    injector = RulesInjector()
    out = []
    for i, (question, positive) in enumerate(_rows(shared_data, 60)):
        for et in ErrorType:
            inj = injector.inject_text(positive, et, key=str(i), question=question)
            if inj.text is not None:
                out.append((question, positive, et, inj))
    return out


def test_every_real_rules_negative_is_confirmed_as_its_type(negatives) -> None:
    assert len(negatives) >= 200  # rules v2 makes no negative where a type has nothing to act on
    judge = ReferenceJudge()
    verdicts = judge.judge([JudgeItem(q, inj.text, pos, claimed=et, evidence=inj.details)
                            for q, pos, et, inj in negatives])
    for (_, _, et, inj), v in zip(negatives, verdicts, strict=True):
        assert v.finding(et) == "present", (et, v.rationale)
        assert v.details["evidence"] == "confirmed"
        assert inj.details["perturbation"] in v.rationale
    # also without the positive (only the record and the response)
    for _, _, et, inj in negatives[:50]:
        assert check_evidence(inj.details, inj.text, None, et).status == "confirmed"


def _tampered(inj, how: str) -> tuple[dict, str]:
    details, text = copy.deepcopy(inj.details), inj.text
    edit = details["edits"][-1]
    if how == "replacement":
        edit["replacement"] = edit["replacement"] + "x"
    elif how == "span":
        edit["span"] = [edit["span"][0] + 1, edit["span"][1] + 1]
    elif how == "perturbation":
        for e in details["edits"]:
            e["perturbation"] = "invented_study"
    elif how == "unknown":
        edit["perturbation"] = "telepathy"
    elif how == "text":
        text = text + " And one more unrecorded sentence."
    elif how == "noop":
        edit["replacement"] = edit["original"]
    return details, text


@pytest.mark.parametrize("how", ["replacement", "span", "perturbation", "unknown", "text", "noop"])
def test_a_tampered_record_is_a_mismatch_and_confirms_nothing(negatives, how: str) -> None:
    question, positive, et, inj = next(n for n in negatives if n[2] is ErrorType.CORRECTNESS)
    details, text = _tampered(inj, how)
    check = check_evidence(details, text, positive, et)
    assert check.status == "mismatch", check
    verdict = ReferenceJudge().judge([JudgeItem(question, text, positive, claimed=et, evidence=details)])[0]
    assert verdict.details["evidence"] == "mismatch"
    assert "rules evidence confirmed" not in verdict.rationale
    assert "does not check out" in verdict.rationale


def test_the_one_edit_layout_is_read_too() -> None:
    positive = "The Eiffel Tower is in Paris. It opened in 1889."
    negative = "The Eiffel Tower is in Paris. It opened in 1901."
    details = {"perturbation": "date", "span": [43, 47], "original": "1889", "replacement": "1901"}
    assert check_evidence(details, negative, positive, "correctness").status == "confirmed"
    assert check_evidence(details, negative, positive, "hallucination").status == "mismatch"


def test_no_record_is_no_evidence() -> None:
    assert check_evidence(None, "x").status == "none"
    assert check_evidence({"raw": "llm text", "finish_reason": "stop"}, "x").status == "none"
