"""Check that an injected negative is a real, usable negative.

A negative passes when it is non-empty, is not a refusal or meta-text about the task, was
not cut off mid-word by the token limit, and differs *materially* from the positive.

Material difference is measured on normalized tokens (lower-cased words and numbers;
punctuation and white space dropped, so re-spacing or re-punctuating changes nothing):

* ``difference`` = 1 - the ``difflib`` similarity ratio of the two token sequences
  (0 = identical, 1 = nothing in common);
* ``changed_tokens`` = content tokens (not stop words) inserted, deleted or replaced.

Defaults: ``changed_tokens >= 1`` and ``difference >= 0.003`` (one changed word in a
~330-word response). A small model asked to inject an error often returns the response
unchanged or re-spaced: both give ``difference == 0`` and fail as ``unchanged``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from difflib import SequenceMatcher

from pydantic import Field, model_validator

from seapo.config import SeapoConfig

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its "
    "this that these those so then than there here we you i he she they them his her their our your "
    "do does did not no yes can could will would should may might must have has had also just".split()
)
_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|i won'?t|i will not|as an ai|i'?m unable|"
    r"i am unable|i apologi[sz]e)",
    re.IGNORECASE,
)
_META = re.compile(
    r"(here is the (revised|modified|updated|new) (response|answer|version)|"
    r"i (have|'ve) (introduced|added|inserted|injected)|"
    r"(the|this) (revised|modified) response (contains|includes|has)|"
    r"\berror type\b|\boriginal response\b|\brevised response\b|\binjected error\b)",
    re.IGNORECASE,
)
_TERMINAL = re.compile(r"""[.!?…:;)\]}"'`*|>]\s*$|```\s*$|\d\s*$""")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@dataclass
class TextDifference:
    difference: float
    """1 - similarity of the normalized token sequences."""
    changed_tokens: int
    """Content tokens inserted, deleted or replaced."""


def measure_difference(positive: str, negative: str) -> TextDifference:
    a, b = tokens(positive), tokens(negative)
    if not a and not b:
        return TextDifference(0.0, 0)
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    changed = 0
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            removed = [t for t in a[i1:i2] if t not in STOPWORDS]
            added = [t for t in b[j1:j2] if t not in STOPWORDS]
            changed += max(len(removed), len(added))
    return TextDifference(round(1.0 - matcher.ratio(), 6), changed)


class VerifierConfig(SeapoConfig):
    """Thresholds of :class:`Verifier`; the defaults are documented in this module."""

    min_difference: float = Field(0.003, ge=0.0, le=1.0, description="Smallest accepted difference (normalized "
                                  "token measure, 0..1; 0.003 is one changed word in ~330).")
    min_changed_tokens: int = Field(1, ge=1, description="Smallest accepted number of changed content tokens.")
    max_difference: float = Field(0.97, gt=0.0, le=1.0, description="Above this the text shares almost nothing "
                                  "with the positive: an unrelated answer, not an injected error. Applied only "
                                  "to positives of at least long_positive_tokens tokens.")
    long_positive_tokens: int = Field(20, ge=1, description="Positives shorter than this may be replaced whole "
                                      "('Paris' -> 'Lyon').")
    reject_meta_text: bool = Field(True, description="Reject refusals and text about the task itself ('I have "
                                   "introduced an error ...').")

    @model_validator(mode="after")
    def _ordered(self) -> VerifierConfig:
        if self.min_difference >= self.max_difference:
            raise ValueError(f"min_difference ({self.min_difference}) must be below max_difference "
                             f"({self.max_difference})")
        return self


@dataclass
class Verification:
    """Outcome of one check; ``reason`` says why it failed (None when it passed)."""

    passed: bool
    reason: str | None
    difference: float
    changed_tokens: int

    def to_dict(self) -> dict:
        return asdict(self)


class Verifier:
    def __init__(self, config: VerifierConfig | None = None) -> None:
        self.config = config or VerifierConfig()

    def check(self, positive: str, negative: str | None, *, truncated: bool = False) -> Verification:
        """Verify one negative. ``truncated``: the generator stopped at its token limit."""
        cfg = self.config
        negative = negative or ""
        diff = measure_difference(positive, negative)

        def result(reason: str | None) -> Verification:
            return Verification(reason is None, reason, diff.difference, diff.changed_tokens)

        if not negative.strip():
            return result("empty")
        # Stopped by the token limit: cut off unless it ends a sentence having covered the positive (a
        # shorter one may lack the positive's end, and a truncation is no error of any type).
        if truncated and (not _TERMINAL.search(negative) or len(tokens(negative)) < len(tokens(positive))):
            return result("truncated")
        if cfg.reject_meta_text and _REFUSAL.search(negative) and not _REFUSAL.search(positive):
            return result("refusal")
        if cfg.reject_meta_text and _META.search(negative) and not _META.search(positive):
            return result("meta_text")
        if diff.difference == 0.0:
            return result("unchanged")
        if diff.difference < cfg.min_difference or diff.changed_tokens < cfg.min_changed_tokens:
            return result("too_similar")
        if diff.difference > cfg.max_difference and len(tokens(positive)) >= cfg.long_positive_tokens:
            return result("unrelated")
        return result(None)
