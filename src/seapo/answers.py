"""Final answers and numbers as written in text: the one place for these patterns.

Low level on purpose (it imports nothing of seapo): the rules injector (``seapo.inject.rules._text``),
evaluation's loaders (``seapo.evaluate.loaders``) and the judge (``seapo.judge.answers``) all read
final answers the same way from here, so a ``#### 72`` the injector changes is the ``#### 72`` the
judge compares.
"""

from __future__ import annotations

import re

NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|(?<!\d)\.\d+"
"""A number as written: ``1,000.50``, ``72``, ``.5`` (no sign; callers match ``-`` themselves)."""

FINAL_ANSWER_RES: tuple[re.Pattern[str], ...] = (
    re.compile(rf"^####[ \t]*\$?[ \t]*-?({NUM})", re.MULTILINE),
    re.compile(rf"\\boxed\{{\s*\$?-?({NUM})\s*\}}"),
    re.compile(rf"(?i:final answer|the answer)(?: is|:)[ \t]*[:=]?[ \t]*\$?-?({NUM})(?![\w/]|[.,]\d)"),
    re.compile(rf"^(?i:answer)[ \t]*:[ \t]*\$?-?({NUM})(?![\w/]|[.,]\d)", re.MULTILINE),
)
"""Where a stated numeric final answer is (group 1), most authoritative first: GSM8K's ``#### N``,
``\\boxed{N}``, "the (final) answer is N", a line "Answer: N"."""


def number_key(text: str) -> str:
    """Normalized value of a number as written (fast, for the rules' hot path): ``1,000.50`` -> ``1000.5``."""
    key = text.replace(",", "")
    if "." in key:
        key = key.rstrip("0").rstrip(".")
    return key or "0"


def normalize_number(text: str) -> str:
    """A GSM8K number as the target is written: no thousands separators, ``$`` or ``.0``."""
    text = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value == int(value) else str(value)


def last_boxed(text: str) -> str | None:
    """The contents of the last ``\\boxed{...}`` (nested braces kept), None without one."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for k in range(brace, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[brace + 1:k]
    return None


def normalize_math_answer(answer: str) -> str:
    """A light Minerva-style normalization: no $, spaces, \\left/\\right, text wrappers, trailing dot."""
    answer = answer.strip().strip("$").strip()
    for old, new in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""), ("dfrac", "frac"),
                     ("tfrac", "frac"), ("^\\circ", ""), ("^{\\circ}", ""), (" ", "")):
        answer = answer.replace(old, new)
    answer = re.sub(r"\\text\{(.*?)\}", r"\1", answer)
    return answer.rstrip(".")
