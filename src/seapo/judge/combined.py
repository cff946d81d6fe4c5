"""Judges combined in a documented order, and the factory behind ``--judge {none,reference,llm}``.

:class:`CombinedJudge` asks its judges in order (``make_judge("llm")``: the reference judge, with the
structural checks and the rules evidence, first; then the LLM judge). Per error type the first judge
with a decisive finding (``present`` or ``absent``) wins; ``unknown`` passes the type on.

* mode ``fallback`` (default): a later judge sees only the items an earlier one left with an
  ``unknown`` type, and decides only those types (the LLM judge is not run where the reference
  judge already decided everything, and never overturns it);
* mode ``all``: every judge judges every item; the decision per type is the same (the first
  decisive judge wins), and every judge's findings are kept side by side in
  ``details["judges"]`` (to measure agreement).

The combined verdict's ``details["decided_by"]`` names, per type, the judge that decided it;
``raw`` holds each judge's raw output by judge name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from seapo.errors import InputError
from seapo.inject.error_types import ALL_ERROR_TYPES, ErrorType
from seapo.judge.base import JUDGES, Finding, Judge, JudgeItem, Verdict
from seapo.judge.reference import ReferenceJudge

__all__ = ["JUDGE_NAMES", "CombinedJudge", "make_judge"]

Mode = Literal["fallback", "all"]
JUDGE_NAMES = ("none", "reference", "llm")
"""The names ``make_judge`` (and ``seapo inject --judge``) accepts."""


class CombinedJudge(Judge):
    """Several judges in order; see the module docstring."""

    name = "combined"

    def __init__(self, judges: Sequence[Judge], mode: Mode = "fallback") -> None:
        super().__init__()
        if not judges:
            raise ValueError("CombinedJudge needs at least one judge")
        if mode not in ("fallback", "all"):
            raise ValueError(f"unknown mode {mode!r}; choose fallback or all")
        self.judges = list(judges)
        self.mode: Mode = mode
        names: list[str] = []
        for j in self.judges:
            label = j.name
            k = 2
            while label in names:
                label, k = f"{j.name}#{k}", k + 1
            names.append(label)
        self.labels = names
        """Each judge's name in the details (``reference``, ``llm``; ``llm#2`` for a second one)."""

    def fingerprint(self) -> str:
        return f"combined|{self.mode}|" + "+".join(j.fingerprint() for j in self.judges)

    def load(self) -> None:
        for j in self.judges:
            j.load()

    def close(self) -> None:
        for j in self.judges:
            j.close()

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        findings: list[dict[ErrorType, Finding]] = [dict.fromkeys(ALL_ERROR_TYPES, "unknown") for _ in items]
        decided_by: list[dict[str, str]] = [{} for _ in items]
        reasons: list[list[str]] = [[] for _ in items]
        raws: list[dict[str, object]] = [{} for _ in items]
        per_judge: list[dict[str, dict]] = [{} for _ in items]
        for judge, label in zip(self.judges, self.labels, strict=True):
            if self.mode == "all":
                todo = list(range(len(items)))
            else:
                todo = [i for i, f in enumerate(findings) if "unknown" in f.values()]
            if not todo:
                break
            verdicts = judge.judge([items[i] for i in todo])
            if len(verdicts) != len(todo):
                raise RuntimeError(f"judge {label} returned {len(verdicts)} verdicts for {len(todo)} items")
            for i, v in zip(todo, verdicts, strict=True):
                raws[i][label] = v.raw
                per_judge[i][label] = {"findings": {t.value: f for t, f in v.findings.items()},
                                       "rationale": v.rationale, **({"details": v.details} if v.details else {})}
                took = []
                for t in ALL_ERROR_TYPES:
                    if findings[i][t] == "unknown" and v.findings[t] != "unknown":
                        findings[i][t] = v.findings[t]
                        decided_by[i][t.value] = label
                        took.append(t.value)
                if took or self.mode == "all":
                    reasons[i].append(f"{label}: {v.rationale}")
        out = []
        for i in range(len(items)):
            details = {"decided_by": decided_by[i], "judges": per_judge[i], "mode": self.mode}
            for label in self.labels:  # the evidence outcome stays where callers look for it
                if "evidence" in per_judge[i].get(label, {}).get("details", {}):
                    details["evidence"] = per_judge[i][label]["details"]["evidence"]
                    break
            out.append(Verdict(findings[i], " | ".join(reasons[i]) or "no judge decided", self.name,
                               raws[i], details))
        return out


def make_judge(name: str, llm: Judge | None = None) -> Judge | None:
    """The judge ``--judge NAME`` means: ``none`` -> None (no judging), ``reference`` -> the reference
    judge, ``llm`` -> the reference judge first, then ``llm`` (default: the registered ``llm`` judge
    with its default settings) for the types it left unknown."""
    if name == "none":
        return None
    if name == "reference":
        return ReferenceJudge()
    if name == "llm":
        if llm is None:
            if "llm" not in JUDGES:
                raise InputError("the LLM judge is not available: no judge is registered as 'llm' "
                                 f"(known: {', '.join(JUDGES.names())}); use --judge reference", field="judge")
            llm = JUDGES.get("llm")()
        return CombinedJudge([ReferenceJudge(), llm], mode="fallback")
    raise InputError(f"unknown judge '{name}'; choose from {', '.join(JUDGE_NAMES)}", field="judge")
