"""The final answer a text states, and when two answers are the same.

Built on :mod:`seapo.answers` (the patterns the rules injector edits and evaluation scores), so the
judge reads a ``#### 72`` exactly where the injector changed it. What is extracted:

* **numeric** final answers: GSM8K ``#### N`` (authoritative when present), ``\\boxed{N}``, "the
  (final) answer is N" / "Answer: N" (:data:`seapo.answers.FINAL_ANSWER_RES`) and the close variants
  of :data:`EXTRA_ANSWER_RES` ("the correct answer is N", "answer = N", "so the answer is $N");
  the last occurrence wins. Numbers are compared by value: ``1,000`` = ``1000.0`` = ``$1000``.
* **math** answers: a non-numeric ``\\boxed{...}``, compared after ``normalize_math_answer``.
* **options**: a letter ``A``-``H`` stated as "the answer is (B)", "Answer: B", "(B)" or "B)" opening
  the text, or the whole text being one letter.
* **listed answers** (TruthfulQA): see :func:`match_listed`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from seapo.answers import FINAL_ANSWER_RES, NUM, last_boxed, normalize_math_answer, normalize_number
from seapo.inject.verify import tokens

__all__ = ["FinalAnswer", "final_answer", "match_listed", "normalize_number", "numeric_value", "option_answer",
           "same_number"]

EXTRA_ANSWER_RES: tuple[re.Pattern[str], ...] = (
    re.compile(rf"(?i:(?:the )?(?:correct|right|final) answer|answer)[ \t]*(?:is|=|would be|will be)[ \t]*"
               rf"[:=]?[ \t]*\$?(-?)[ \t]*({NUM})(?![\w/]|[.,]\d)"),
)
"""Close variants of "the answer is N" the injector does not edit but a model writes."""

_OPTION_STATED = re.compile(r"(?i:answer)(?:[ \t]+(?:is|would be|will be))?[ \t]*[:=]?[ \t]*"
                            r"(?:option[ \t]+)?\(?([A-H])\)?(?![\w'])")
_OPTION_OPENING = re.compile(r"^[ \t*\"'\[]*\(?([A-H])\)(?![\w'])|^[ \t*]*\(?([A-H])[.:]?[ \t*]*$")
_NEGATIONS = frozenset("not no never cannot none nobody nothing neither nor t".split())


@dataclass(frozen=True)
class FinalAnswer:
    """One stated answer: its kind, its normalized value and where it is in the text."""

    kind: str
    """``number``, ``math`` (a non-numeric ``\\boxed{}``) or ``option``."""
    value: str
    start: int
    end: int


def numeric_value(text: str) -> float | None:
    """The value of a written number (``$1,000.0`` -> 1000.0), None if it is not one."""
    try:
        return float(normalize_number(text))
    except ValueError:
        return None


def same_number(a: str, b: str) -> bool:
    """Two written numbers have the same value (within 1e-9 relative: ``0.5`` = ``.50``)."""
    x, y = numeric_value(a), numeric_value(b)
    if x is None or y is None:
        return normalize_number(a) == normalize_number(b)
    return abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))


def final_answer(text: str) -> FinalAnswer | None:
    """The numeric (or boxed math) final answer ``text`` states; None when it states none."""
    best: tuple[int, int, str] | None = None
    for rx in FINAL_ANSWER_RES:
        for m in rx.finditer(text):
            if best is None or m.start(1) > best[0]:
                neg = "-" if text[max(0, m.start(1) - 1):m.start(1)] == "-" else ""
                best = (m.start(1), m.end(1), neg + m.group(1))
        if best is not None and rx is FINAL_ANSWER_RES[0]:
            return FinalAnswer("number", normalize_number(best[2]), best[0], best[1])  # ``#### N`` is authoritative
    if "answer" in text or "Answer" in text or "ANSWER" in text:
        for rx in EXTRA_ANSWER_RES:
            for m in rx.finditer(text):
                if best is None or m.start(2) > best[0]:
                    best = (m.start(2), m.end(2), m.group(1) + m.group(2))
    if best is not None:
        return FinalAnswer("number", normalize_number(best[2]), best[0], best[1])
    boxed = last_boxed(text) if "\\boxed" in text else None
    if boxed is not None and boxed.strip():
        start = text.rfind("\\boxed")
        return FinalAnswer("math", normalize_math_answer(boxed), start, start + len(boxed) + 8)
    return None


def option_answer(text: str) -> FinalAnswer | None:
    """The option letter ``text`` answers with, None when it states none (see the module docstring)."""
    found = None
    for m in _OPTION_STATED.finditer(text):
        found = m
    if found is not None:
        return FinalAnswer("option", found.group(1), found.start(1), found.end(1))
    m = _OPTION_OPENING.match(text.strip())
    if m:
        letter = m.group(1) or m.group(2)
        at = text.find(letter)
        return FinalAnswer("option", letter, at, at + 1)
    return None


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    if n == 0 or n > len(haystack):
        return False
    first = needle[0]
    return any(haystack[i] == first and haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def match_listed(response: str, correct: tuple[str, ...], incorrect: tuple[str, ...]) -> tuple[str, str] | None:
    """Which listed answer the response gives: ``("correct" | "incorrect", the answer)``, or None.

    Rules (on normalized tokens: lower case, punctuation dropped):

    * a listed answer matches when its tokens appear as one contiguous run in the response's
      tokens (``"Paris"`` in "The capital is Paris.");
    * a match does not count when the response holds a negation (not, no, never, n't, ...) that the
      listed answer does not: "it is not true that cracking your knuckles causes arthritis" must not
      match the incorrect "cracking your knuckles causes arthritis";
    * when both a correct and an incorrect answer match, the longer wins only if it contains the
      shorter (it is the more specific statement of the same words); otherwise the response says
      both things and is ambiguous: None.
    """
    resp = tokens(response)
    if not resp:
        return None
    negated = _NEGATIONS.intersection(resp)

    def best(answers: tuple[str, ...]) -> list[str] | None:
        top: list[str] | None = None
        for answer in answers:
            toks = tokens(answer)
            if not toks or negated - set(toks):
                continue
            if _contains(resp, toks) and (top is None or len(toks) > len(top)):
                top = toks
        return top

    good, bad = best(correct), best(incorrect)
    if good is None and bad is None:
        return None
    if good is not None and bad is not None:
        if len(good) > len(bad) and _contains(good, bad):
            return "correct", " ".join(good)
        if len(bad) > len(good) and _contains(bad, good):
            return "incorrect", " ".join(bad)
        return None  # it says both things
    return ("correct", " ".join(good)) if good is not None else ("incorrect", " ".join(bad or []))
