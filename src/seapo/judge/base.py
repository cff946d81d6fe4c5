"""The judge protocol: which of the three error types a response contains, against a reference.

A judge answers, for each error type of :mod:`seapo.inject.error_types`, one of three findings:
``present``, ``absent`` or ``unknown`` (it could not decide; a judge never guesses). A
:class:`Verdict` holds the findings, a short rationale and the raw judge output (the LLM judge's
text; structured evidence for the model-free judges).

Judges have the backend lifecycle (construct cheaply, :meth:`Judge.load`, :meth:`Judge.judge`,
:meth:`Judge.close`) and register by name in :data:`JUDGES` (entry-point group ``seapo.judges``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from seapo.config import SeapoConfig
from seapo.inject.error_types import ALL_ERROR_TYPES, ErrorType
from seapo.registry import Registry

Finding = Literal["present", "absent", "unknown"]
FINDINGS: tuple[Finding, ...] = ("present", "absent", "unknown")


@dataclass(frozen=True)
class JudgeItem:
    """One response to judge. ``reference`` is what it is measured against: the positive it was
    made from (injection), or a reference answer (profiling)."""

    question: str
    response: str
    reference: str | None = None
    """The reference response or answer text (the positive, a GSM8K solution, a TruthfulQA best answer)."""
    correct_answers: tuple[str, ...] = ()
    """Answers known to be right (TruthfulQA's correct list, a GSM8K final number, an option label)."""
    incorrect_answers: tuple[str, ...] = ()
    """Answers known to be wrong (TruthfulQA's incorrect list, the other options)."""
    claimed: ErrorType | None = None
    """The error type the injector meant to put in (injection only)."""
    evidence: dict[str, Any] | None = None
    """How the response was made (a rules negative's perturbation record: ``Injection.details``)."""


@dataclass
class Verdict:
    """What a judge found in one response."""

    findings: dict[ErrorType, Finding]
    """One finding per error type (every type is present as a key)."""
    rationale: str
    """Why, in a sentence or two."""
    judge: str
    """The registered name of the judge that decided (``reference``, ``llm``, ``combined``)."""
    raw: Any = None
    """The judge's raw output: the LLM's text, or the model-free judges' evidence."""
    details: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping (parse failures and retries of the LLM judge, per-judge findings)."""

    @property
    def errors(self) -> frozenset[ErrorType]:
        """The error types found present (empty: none found)."""
        return frozenset(t for t, f in self.findings.items() if f == "present")

    @property
    def unknown(self) -> frozenset[ErrorType]:
        return frozenset(t for t, f in self.findings.items() if f == "unknown")

    @property
    def clean(self) -> bool:
        """Every type found absent: the judge says the response holds no error."""
        return all(f == "absent" for f in self.findings.values())

    def finding(self, error_type: ErrorType | str) -> Finding:
        return self.findings[ErrorType(error_type)]

    def to_dict(self) -> dict[str, Any]:
        return {"findings": {t.value: f for t, f in self.findings.items()},
                "errors": sorted(t.value for t in self.errors), "rationale": self.rationale,
                "judge": self.judge, "raw": self.raw, "details": self.details}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Verdict:
        return cls({ErrorType(t): f for t, f in row["findings"].items()}, row.get("rationale", ""),
                   row.get("judge", ""), row.get("raw"), row.get("details") or {})


def verdict(judge: str, rationale: str, raw: Any = None, *, default: Finding = "unknown",
            **findings: Finding) -> Verdict:
    """A verdict with ``default`` for every type not named: ``verdict("reference", "...", hallucination="absent")``."""
    found = {t: findings.get(t.value, default) for t in ALL_ERROR_TYPES}
    bad = [f for f in found.values() if f not in FINDINGS]
    if bad:
        raise ValueError(f"findings must be one of {FINDINGS}, got {bad}")
    return Verdict(found, rationale, judge, raw)


class Judge(ABC):
    """Judges a batch of responses; subclasses implement :meth:`judge` and :meth:`fingerprint`."""

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[SeapoConfig]] = SeapoConfig

    def __init__(self, config: SeapoConfig | None = None) -> None:
        self.config = config if config is not None else self.config_class()

    @abstractmethod
    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        """One verdict per item, in order."""

    @abstractmethod
    def fingerprint(self) -> str:
        """Stable text naming the judge and every setting that changes its verdicts (a resume key)."""

    def load(self) -> None:  # noqa: B027 - optional hook
        """Acquire models (``judge`` may also do it on first use)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __enter__(self) -> Judge:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


JUDGES: Registry[type[Judge]] = Registry("judge", "seapo.judges",
                                       builtin_modules=("seapo.judge.reference", "seapo.judge.llm"))
"""Every judge by name (the built-ins register when their modules are imported)."""
