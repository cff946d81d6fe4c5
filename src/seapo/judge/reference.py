"""The reference judge: no model, only what can be proved against a reference and a record.

For each item the checks run in this order; a later check only decides the types an earlier one
left ``unknown`` (a ``present`` is never overturned), and what none decides stays ``unknown``:

1. **Rules evidence** (:mod:`seapo.judge.evidence`): a confirmed perturbation record makes its
   edits' types ``present``, naming the perturbations. A record that does not check out is recorded
   (``details["evidence"] = "mismatch"``, with the reason) and confirms nothing.
2. **Final answers** (:mod:`seapo.judge.answers`), correctness only:

   * numeric: the reference number is the numeric ``correct_answers`` when given, else the final
     answer the reference text states. A response stating a different number: ``present``. The
     same number: ``absent``, but only when nothing else speaks against it: no wrong arithmetic
     step (3.) and, against a reference text, an edit that changed no other number, number word,
     negation or entity (an intermediate number changed with the final answer kept is not proved
     right). Logic stays ``unknown``: a right
     final answer does not prove the steps;
   * options: the reference letter (a one-letter ``correct_answers``, or the option the reference
     states) against the response's: different ``present``, same ``absent`` (with the same guard
     as a same number);
   * listed answers (TruthfulQA's ``correct_answers`` / ``incorrect_answers``): the response
     matches an incorrect answer ``present``, a correct one ``absent`` (same guard; containment
     rules in :func:`seapo.judge.answers.match_listed`; an ambiguous response decides nothing).
3. **Arithmetic**: a worked step ``a op b = c`` (or a GSM8K ``<<a*b=c>>`` annotation) on a line of
   the response the reference does not hold, whose stated result is not its value, and that the
   reference does not hold either: correctness ``present``. Run only where the edit touched numbers
   (or without a reference text). Steps the parser cannot read whole (fractions, chained equations,
   mixed numbers) are skipped, not called wrong.
4. **Structural** (:mod:`seapo.judge.structural`, against a reference text): an edit that provably
   adds no error (identical, truncation, deletion only, restated question, rewording) makes every
   type still ``unknown`` ``absent``; any other edit is described in the rationale and decides
   nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from seapo.config import SeapoConfig
from seapo.inject.error_types import ALL_ERROR_TYPES, ErrorType
from seapo.inject.rules._text import Doc, safe_eval
from seapo.judge.answers import FinalAnswer, final_answer, match_listed, numeric_value, option_answer, same_number
from seapo.judge.base import JUDGES, Finding, Judge, JudgeItem, Verdict
from seapo.judge.evidence import check_evidence
from seapo.judge.structural import analyze

__all__ = ["ReferenceJudge", "ReferenceJudgeConfig"]

VERSION = 1
"""Bumped whenever a rule changes a verdict (part of the fingerprint)."""

_LETTERS = frozenset("ABCDEFGH")


class ReferenceJudgeConfig(SeapoConfig):
    """Settings of :class:`ReferenceJudge`."""

    use_evidence: bool = Field(True, description="Confirm rules negatives from their perturbation record "
                               "(off: judge every negative from its text alone, as a non-rules negative is).")
    structural: bool = Field(True, description="Decide 'absent' for edits that provably add no error "
                             "(truncations, deletions, rewordings); docs/judge.md lists the rules.")


_CONTINUES = re.compile(r"[ \t]*(?:[/*+×÷^-]|[xX][ \t]|=)")
_MIXED_NUMBER_BEFORE = re.compile(r"\d[ \t]+$")


def _wrong_steps(text: str) -> set[tuple[str, str]]:
    """(expression, stated result) of the worked steps whose result is not the expression's value.

    Steps the step parser cannot read whole are left out rather than called wrong: a result that
    goes on (``1/2 * 1/2 = 1/4`` read as ``= 1``, ``a + b/2 = c + d = ...``) or an expression that
    starts inside a mixed number (``8 x 1 1/2 = 12``)."""
    if "=" not in text:
        return set()
    out = set()
    for st in Doc(text).steps:
        if st.verified or safe_eval(st.expr) is None:
            continue  # right, or not plain arithmetic the evaluator reads (``+30+46``): not called wrong
        end = st.results[0][1] if st.results else st.end
        if _CONTINUES.match(text, end) or _MIXED_NUMBER_BEFORE.search(text, max(0, st.start - 8), st.start):
            continue
        out.add((st.expr.replace(" ", ""), st.result_text))
    return out


@JUDGES.register("reference")
class ReferenceJudge(Judge):
    """Model-free judge; the rules are in the module docstring and docs/judge.md."""

    name = "reference"
    config_class = ReferenceJudgeConfig
    config: ReferenceJudgeConfig

    def fingerprint(self) -> str:
        return (f"reference|v{VERSION}|evidence={int(self.config.use_evidence)}"
                f"|structural={int(self.config.structural)}")

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        return [self.judge_one(item) for item in items]

    def judge_one(self, item: JudgeItem) -> Verdict:
        """The verdict on one item (see the module docstring for the order of the checks)."""
        findings: dict[ErrorType, Finding] = dict.fromkeys(ALL_ERROR_TYPES, "unknown")
        reasons: list[str] = []
        raw: dict[str, Any] = {}
        details: dict[str, Any] = {}
        response = item.response or ""

        def decide(t: ErrorType, finding: Finding, why: str) -> None:
            if findings[t] == "unknown":
                findings[t] = finding
                reasons.append(f"{t.value} {finding}: {why}")

        # 1. rules evidence
        confirmed_edits = None
        if self.config.use_evidence and item.evidence:
            ev = check_evidence(item.evidence, response, item.reference, item.claimed)
            if ev.status != "none":
                raw["evidence"] = ev.to_dict()
                details["evidence"] = ev.status
            if ev.status == "confirmed":
                confirmed_edits = ev.edits if item.reference is not None else None
                for t in ALL_ERROR_TYPES:
                    if t in ev.types:
                        decide(t, "present", f"rules evidence confirmed ({', '.join(ev.perturbations)})")
            elif ev.status == "mismatch":
                details["evidence_reason"] = ev.reason
                reasons.append(f"rules evidence does not check out: {ev.reason}")

        # 2./3. final answers and arithmetic
        same_answer: str | None = None
        ref_number = self._reference_number(item)
        if ref_number is not None:
            got = final_answer(response)
            raw["final_answer"] = {"reference": ref_number, "response": got.value if got else None}
            if got is not None and got.kind == "number" and numeric_value(ref_number) is not None:
                if not same_number(got.value, ref_number):
                    decide(ErrorType.CORRECTNESS, "present",
                           f"final answer {got.value} differs from the reference's {ref_number}")
                else:
                    same_answer = f"final answer {got.value}"
            elif got is not None and got.kind == "math" and got.value != ref_number:
                decide(ErrorType.CORRECTNESS, "present", f"final answer {got.value} differs from {ref_number}")
            elif got is not None and got.kind == "math":
                same_answer = f"final answer {got.value}"
        option = self._reference_option(item)
        if option is not None:
            got_option = option_answer(response)
            if got_option is not None:
                raw["option"] = {"reference": option, "response": got_option.value}
                if got_option.value != option:
                    decide(ErrorType.CORRECTNESS, "present", f"option {got_option.value} instead of {option}")
                else:
                    same_answer = same_answer or f"option {option}"
        listed_correct = tuple(a for a in item.correct_answers if not _is_short_answer(a))
        listed_incorrect = tuple(a for a in item.incorrect_answers if not _is_short_answer(a))
        if listed_correct or listed_incorrect:
            match = match_listed(response, listed_correct, listed_incorrect)
            raw["listed"] = list(match) if match else None
            if match and match[0] == "incorrect":
                decide(ErrorType.CORRECTNESS, "present", f"matches the listed incorrect answer '{match[1]}'")
            elif match:
                same_answer = same_answer or f"the listed correct answer '{match[1]}'"
        # the edit is measured first: where it provably adds no number, no step can have become wrong
        analysis = None
        if self.config.structural and item.reference is not None:
            analysis = analyze(item.reference, response, item.question, confirmed_edits)
            raw["structural"] = analysis.to_dict()
        if findings[ErrorType.CORRECTNESS] == "unknown" and (analysis is None or analysis.numbers_added
                                                            or analysis.numbers_removed or analysis.moved_tokens
                                                            or analysis.critical_deletion):
            wrong = _wrong_steps(_new_lines(response, item.reference))
            if wrong:
                wrong -= _wrong_steps(item.reference or "")
                if wrong:
                    expr, result = sorted(wrong)[0]
                    decide(ErrorType.CORRECTNESS, "present", f"arithmetic step {expr} = {result} is wrong")

        # 4. structural
        if analysis is not None:
            if analysis.no_error:
                for t in ALL_ERROR_TYPES:
                    decide(t, "absent", analysis.describe())
            else:
                reasons.append(f"edit: {analysis.describe()}")
        if same_answer is not None:
            others = analysis is not None and bool(
                analysis.numbers_added or analysis.numbers_removed or analysis.number_words
                or analysis.negation_changed or analysis.entities_added or analysis.critical_deletion)
            if others:
                reasons.append(f"{same_answer} as the reference, but the edit changed other numbers, "
                               "negations or entities")
            else:
                decide(ErrorType.CORRECTNESS, "absent", f"{same_answer}, as the reference")
        rationale = "; ".join(reasons) or "nothing decidable without a model"
        verdict = Verdict(findings, rationale, self.name, raw, details)
        return verdict

    @staticmethod
    def _reference_number(item: JudgeItem) -> str | None:
        numbers = [a for a in item.correct_answers if numeric_value(a) is not None]
        if numbers:
            return numbers[0]
        if item.reference:
            found: FinalAnswer | None = final_answer(item.reference)
            if found is not None:
                return found.value
        return None

    @staticmethod
    def _reference_option(item: JudgeItem) -> str | None:
        letters = [a.strip().strip("()").upper() for a in item.correct_answers
                   if a.strip().strip("()").upper() in _LETTERS and len(a.strip().strip("()")) == 1]
        if letters:
            return letters[0]
        if item.reference and not item.correct_answers:
            found = option_answer(item.reference)
            if found is not None:
                return found.value
        return None


def _new_lines(text: str, reference: str | None) -> str:
    """The lines of ``text`` the reference does not hold verbatim (where a new wrong step can be)."""
    if not reference:
        return text
    old = set(reference.split("\n"))
    return "\n".join(line for line in text.split("\n") if line not in old)


def _is_short_answer(answer: str) -> bool:
    """A number or an option letter: compared as a final answer, not as listed text."""
    bare = answer.strip().strip("()")
    return numeric_value(bare) is not None or (len(bare) == 1 and bare.upper() in _LETTERS)
