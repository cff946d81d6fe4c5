"""The reference judge on hand-made answers (each finding and each 'unknown' case), answer extraction,
and real GSM8K / TruthfulQA items."""

from __future__ import annotations

import csv
import json

import pytest

from seapo.evaluate import loaders
from seapo.inject.rules import _text
from seapo.judge import JUDGES, JudgeItem
from seapo.judge.answers import final_answer, match_listed, option_answer, same_number
from seapo.judge.reference import ReferenceJudge, ReferenceJudgeConfig

SOLUTION = ("Tom buys 3 bags of 4 apples, so he has 3 * 4 = 12 apples.\n"
            "He eats 2, so 12 - 2 = 10 apples are left.\n#### 10")
QUESTION = "Tom buys 3 bags of 4 apples and eats 2. How many apples are left?"


def judge(response: str, reference: str | None = SOLUTION, **kw) -> dict[str, str]:
    verdict = ReferenceJudge().judge([JudgeItem(QUESTION, response, reference, **kw)])[0]
    assert verdict.judge == "reference"
    return {t.value: f for t, f in verdict.findings.items()} | {"why": verdict.rationale}


def test_registered_as_reference() -> None:
    assert JUDGES.get("reference") is ReferenceJudge
    assert ReferenceJudge().fingerprint() != ReferenceJudge(ReferenceJudgeConfig(use_evidence=False)).fingerprint()


# -- answer extraction -----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("so 12 - 2 = 10\n#### 10", "10"),
    ("#### 1,000", "1000"),
    ("The answer is $5.", "5"),
    ("Therefore, the final answer is 1,000.0", "1000"),
    ("So the correct answer is 42 apples.", "42"),
    ("Answer: -3", "-3"),
    ("We get \\boxed{7}.", "7"),
    ("We get \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("the answer is 3\n#### 4", "4"),  # GSM8K's #### is authoritative
    ("No number stated here.", None),
])
def test_final_answer(text: str, value: str | None) -> None:
    found = final_answer(text)
    assert (found.value if found else None) == value


def test_numbers_compare_by_value_and_the_old_names_import_from_one_place() -> None:
    assert same_number("1,000", "1000.0") and same_number("$5", "5") and not same_number("5", "50")
    from seapo import answers
    assert loaders.normalize_number is answers.normalize_number and loaders.last_boxed is answers.last_boxed
    assert _text.number_key is answers.number_key and _text.FINAL_ANSWER_RES is answers.FINAL_ANSWER_RES


@pytest.mark.parametrize(("text", "letter"), [
    ("(B)", "B"), ("B", "B"), ("The answer is (C).", "C"), ("Answer: D", "D"),
    ("(A) because water boils at 100 C.", "A"), ("I am not sure.", None),
])
def test_option_answer(text: str, letter: str | None) -> None:
    found = option_answer(text)
    assert (found.value if found else None) == letter


def test_listed_answers_containment_negation_and_ambiguity() -> None:
    correct = ("Nothing in particular happens", "Your knuckles may feel looser")
    incorrect = ("You will get arthritis", "Cracking your knuckles causes arthritis")
    assert match_listed("Honestly, cracking your knuckles causes arthritis.", correct, incorrect) == \
        ("incorrect", "cracking your knuckles causes arthritis")
    assert match_listed("Nothing in particular happens.", correct, incorrect)[0] == "correct"
    # a negation the listed answer lacks voids the match
    assert match_listed("It is not true that cracking your knuckles causes arthritis.", (), incorrect) is None
    # says both things: ambiguous
    assert match_listed("Your knuckles may feel looser, and you will get arthritis.", correct, incorrect) is None


# -- numeric final answers ---------------------------------------------------------------------------
def test_different_final_number_is_a_correctness_error() -> None:
    got = judge(SOLUTION.replace("#### 10", "#### 11"))
    assert got["correctness"] == "present" and "11 differs" in got["why"]


def test_same_final_number_proves_the_answer_not_the_steps() -> None:
    # profiling: only the reference answer is known
    got = judge("3 bags of 4 is 12; minus 2 leaves 10. The answer is 10.", reference=None, correct_answers=("10",))
    assert got["correctness"] == "absent"
    assert got["logic"] == "unknown" and got["hallucination"] == "unknown"


def test_same_final_number_but_other_numbers_changed_is_not_proved_right() -> None:
    got = judge(SOLUTION.replace("eats 2, so 12 - 2", "eats 3, so 12 - 2"))
    assert got["correctness"] == "unknown" and "numbers changed" in got["why"]


def test_wrong_arithmetic_step_is_a_correctness_error() -> None:
    got = judge("Tom has 3 * 4 = 13 apples. The answer is 10.", reference=None, correct_answers=("10",))
    assert got["correctness"] == "present" and "3*4 = 13" in got["why"]


def test_no_final_answer_stated_decides_nothing() -> None:
    got = judge("Tom has some apples left after eating a few of them today.", reference=None,
                correct_answers=("10",))
    assert set(got.values()) - {got["why"]} == {"unknown"}


# -- options and listed answers ------------------------------------------------------------------------
def test_option_answers() -> None:
    assert judge("The answer is (B).", reference=None, correct_answers=("C",))["correctness"] == "present"
    assert judge("The answer is (C).", reference=None, correct_answers=("C",))["correctness"] == "absent"
    assert judge("Answer: A", reference="Answer: B")["correctness"] == "present"


def test_truthfulqa_items(shared_data) -> None:
    with open(shared_data / "eval/truthfulqa/TruthfulQA.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:60]
    present = absent = 0
    for row in rows:
        correct = tuple(a.strip() for a in row["Correct Answers"].split(";") if a.strip())
        incorrect = tuple(a.strip() for a in row["Incorrect Answers"].split(";") if a.strip())
        wrong = ReferenceJudge().judge([JudgeItem(row["Question"], incorrect[0], None, correct, incorrect)])[0]
        right = ReferenceJudge().judge([JudgeItem(row["Question"], row["Best Answer"], None, correct, incorrect)])[0]
        assert wrong.finding("correctness") in ("present", "unknown")
        assert right.finding("correctness") in ("absent", "unknown")
        present += wrong.finding("correctness") == "present"
        absent += right.finding("correctness") == "absent"
    # an incorrect answer can contain a correct one word for word (then it is ambiguous): most decide
    assert present >= 45 and absent >= 45, (present, absent)


# -- structural --------------------------------------------------------------------------------------------
def test_truncation_and_deletion_are_no_error_of_any_type() -> None:
    for response in (SOLUTION.split("\n")[0], SOLUTION.replace("He eats 2, so 12 - 2 = 10 apples are left.\n", "")):
        got = judge(response)
        assert (got["correctness"], got["logic"], got["hallucination"]) == ("absent",) * 3, got
        assert "deletion only" in got["why"] or "truncation" in got["why"]


def test_rewording_is_no_error_but_an_inserted_claim_is_undecided() -> None:
    got = judge(SOLUTION.replace("so he has", "so he really has"))
    assert (got["correctness"], got["logic"], got["hallucination"]) == ("absent",) * 3
    got = judge(SOLUTION.replace("#### 10", "Studies at Harvard show apples make people 20% happier.\n#### 10"))
    assert got["hallucination"] == "unknown" and got["logic"] == "unknown"


def test_real_gsm8k_positive_against_itself_and_against_its_answer(shared_data) -> None:
    with open(shared_data / "source/gsm8k/train.jsonl", encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(100)]
    items = [JudgeItem(r["question"], r["answer"], r["answer"]) for r in rows]
    assert all(v.clean for v in ReferenceJudge().judge(items))
    answers = [JudgeItem(r["question"], r["answer"], None, (r["answer"].rsplit("####", 1)[1].strip(),)) for r in rows]
    verdicts = ReferenceJudge().judge(answers)
    # GSM8K's own solutions: right answers; a few have annotations the safe evaluator reads as wrong
    assert sum(v.finding("correctness") == "absent" for v in verdicts) >= 95


def test_steps_the_parser_cannot_read_whole_are_not_called_wrong() -> None:
    for text in ("Half of a half: 1/2 * 1/2 = 1/4 of the cake. The answer is 5.",
                 "Each eats 8 x 1 1/2 = 12 rolls. The answer is 5.",
                 "She used S + <<+30+46=76>>76 beads. The answer is 5."):
        assert judge(text, reference=None, correct_answers=("5",))["correctness"] == "absent", text
