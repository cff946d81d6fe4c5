"""Real outputs of the embedded model's LLM injection (tests/judge/fixtures/llm_injections.jsonl,
hand-labelled; README.md there has the commands): the judge must not find the claimed error in a
negative that only truncates, deletes, paraphrases or restates."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from seapo.judge import JudgeItem
from seapo.judge.reference import ReferenceJudge

FIXTURE = Path(__file__).parent / "fixtures" / "llm_injections.jsonl"
NOT_ERRORS = {"truncation", "deletion", "paraphrase", "repetition", "unchanged", "restated_question"}
LABELS = NOT_ERRORS | {"real_error", "wrong_type", "meta_text", "unrelated"}


def _rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_fixture_is_labelled() -> None:
    rows = _rows()
    assert 20 <= len(rows) <= 60
    assert {r["label"] for r in rows} <= LABELS, Counter(r["label"] for r in rows)
    assert sum(r["label"] in NOT_ERRORS for r in rows) >= 5


def test_no_truncation_deletion_paraphrase_or_restatement_is_judged_to_hold_its_claimed_error() -> None:
    rows = _rows()
    verdicts = ReferenceJudge().judge([JudgeItem(r["question"], r["negative"], r["positive"], claimed=r["claimed"])
                                       for r in rows])
    outcome: Counter = Counter()
    for r, v in zip(rows, verdicts, strict=True):
        found = v.finding(r["claimed"])
        outcome[(r["label"], found)] += 1
        if r["label"] in NOT_ERRORS:
            assert found != "present", (r["label"], r["negative"][:200], v.rationale)
        if r["label"] in ("truncation", "deletion", "unchanged", "restated_question"):
            assert found == "absent", (r["label"], r["negative"][:200], v.rationale)
    # The reference judge has no model: real errors outside math stay 'unknown' (for the LLM judge).
    # Measured on this fixture (hand labels):
    real = {f: n for (label, f), n in outcome.items() if label == "real_error"}
    assert real == EXPECTED_REAL_ERRORS, outcome


EXPECTED_REAL_ERRORS: dict[str, int] = {"present": 1, "unknown": 6}
"""Findings of the claimed type on the 7 rows labelled ``real_error``: the wrong sum (140 + 96 = 232) is
proved; the other six (a dropped date, a false claim about Collins, code that never prints Fizz, the
phases out of order, a misnamed total) need a model: ``unknown``, never ``absent``."""


def test_the_verifier_alone_accepts_non_errors_the_judge_refuses() -> None:
    rows = _rows()
    passed = [r for r in rows if r["verifier"] == "passed" and r["label"] in NOT_ERRORS]
    assert len(passed) == 10  # 4 deletions, 2 truncations, 3 paraphrases, 1 restated question
    verdicts = ReferenceJudge().judge([JudgeItem(r["question"], r["negative"], r["positive"], claimed=r["claimed"])
                                       for r in passed])
    assert sum(v.finding(r["claimed"]) == "absent" for r, v in zip(passed, verdicts, strict=True)) == 7
    assert not any(v.finding(r["claimed"]) == "present" for r, v in zip(passed, verdicts, strict=True))
