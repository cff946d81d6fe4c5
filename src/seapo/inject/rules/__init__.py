"""The rules injector: model-free, deterministic negatives from real perturbations of the text.

Each error type has a set of perturbations (see ``docs/rules.md``), each with a precondition.
For one response the applicable ones are put in a seeded order (seed, record id, error type);
attempt ``k`` starts from the ``k``-th, so retries try a different perturbation, and the
location is drawn with ``attempt`` in the seed too. When one edit changes too little of a
long text for the verifier, further perturbations of the same type are added. Correctness
negatives of texts with a stated final answer (``#### 72``, ``the answer is 72``) always end
with a different final answer.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from seapo.config import SeapoConfig
from seapo.data.schema import Record
from seapo.inject.base import INJECTORS, Injection, Injector
from seapo.inject.error_types import ErrorType
from seapo.inject.rules._perturb import BY_NAME, BY_TYPE, PERTURBATIONS, Perturbation, make_final_answer
from seapo.inject.rules._text import Doc, Edit, apply_edits, overlaps
from seapo.inject.verify import _META, _REFUSAL, VerifierConfig, measure_difference

__all__ = ["PERTURBATIONS", "RulesInjector", "RulesInjectorConfig", "perturbation_names"]

VERSION = 5
"""Bumped whenever a rule changes what it writes (part of the fingerprint)."""


def perturbation_names(error_type: ErrorType | str) -> tuple[str, ...]:
    """Names of the perturbations available for one error type."""
    return tuple(p.name for p in BY_TYPE[ErrorType(error_type)])


def _perturbation_field(error_type: ErrorType, names: str) -> Any:
    off = [p.name for p in BY_TYPE[error_type] if not p.default]
    default = f"all but {', '.join(off)}" if off else "all"
    return Field(None, description=f"{error_type.value.capitalize()} perturbations allowed (none given: "
                                   f"{default}): {names}.")


class RulesInjectorConfig(SeapoConfig):
    """Settings of :class:`RulesInjector`."""

    seed: int = Field(0, description="Seed of every random choice; the output is a pure function of (seed, "
                                     "record id, error type, attempt) and the text.")
    correctness: tuple[str, ...] | None = _perturbation_field(
        ErrorType.CORRECTNESS, "calculation, operand, final_answer, number, date, unit, entity, swapped_facts, "
        "negation, answer_choice, answer_swap, code_constant, code_operator")
    logic: tuple[str, ...] | None = _perturbation_field(
        ErrorType.LOGIC, "reordered_steps, premise_removed, reversed_cause, reversed_conclusion, "
        "dropped_condition, swapped_connective, wrong_conclusion, code_reorder, code_condition")
    hallucination: tuple[str, ...] | None = _perturbation_field(
        ErrorType.HALLUCINATION, "invented_figure, invented_date, invented_name, invented_source, invented_api")
    max_edits: int = Field(6, ge=1, description="Most perturbations combined in one negative when single ones "
                                                "change too little.")
    margin: float = Field(1.25, ge=1.0, description="Aim for margin x the verifier's minimum difference, since "
                                                    "the injector's estimate of it is computed locally.")

    @field_validator("correctness", "logic", "hallucination", mode="before")
    @classmethod
    def _known_perturbations(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = [c.strip() for c in value.split(",") if c.strip()]
        chosen = tuple(value)
        known = perturbation_names(info.field_name)
        unknown = [c for c in chosen if c not in known]
        if unknown or not chosen:
            raise ValueError(f"unknown or empty {info.field_name} perturbations {list(unknown or chosen)}; "
                             f"choose from {', '.join(known)}")
        return chosen


# two edits that trade words between two places: estimated one by one, each looks like a change,
# but the verifier's alignment sees fewer (a move inside one edit's span is estimated right)
_MOVES = frozenset(("swapped_facts",))
_MASK = (1 << 64) - 1
_WHOLE = re.compile(r"\d[\d,]*")
_SIGNED = re.compile(r"-?[\d,]*\.?\d+")


class _SplitMix(random.Random):
    """``random.Random`` driven by splitmix64: seeding costs nothing (the Mersenne Twister's
    seeding alone would be ~10% of an injection), and the stream is fixed by the seed."""

    def seed(self, a: Any = None, version: int = 2) -> None:
        self._state = int(a or 0) & _MASK

    def _next(self) -> int:
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        return (self._next() >> 11) * (1.0 / 9007199254740992.0)

    def getrandbits(self, k: int) -> int:
        out = bits = 0
        while bits < k:
            out = (out << 64) | self._next()
            bits += 64
        return out >> (bits - k)


def _seed(*parts: Any) -> int:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@INJECTORS.register("rules")
class RulesInjector(Injector):
    """Model-free injector; see the module docstring. ``verifier``: the thresholds every negative is
    made to clear (an injection run passes its own verifier's)."""

    config_class = RulesInjectorConfig

    def __init__(self, config: RulesInjectorConfig | None = None, *, verifier: VerifierConfig | None = None) -> None:
        super().__init__(config, verifier=verifier)
        self._enabled: dict[ErrorType, tuple[Perturbation, ...]] = {}
        for et in ErrorType:
            chosen = getattr(self.config, et.value)
            self._enabled[et] = tuple(p for p in BY_TYPE[et] if p.default) if chosen is None else \
                tuple(BY_NAME[n] for n in chosen)

    def fingerprint(self) -> str:
        cfg = self.config
        enabled = ";".join(f"{et.value}={','.join(p.name for p in self._enabled[et])}" for et in ErrorType
                           if getattr(cfg, et.value) is not None)
        return (f"rules|v{VERSION}|seed={cfg.seed}|max_edits={cfg.max_edits}|margin={cfg.margin}"
                f"|target={self.verifier.min_difference},{self.verifier.min_changed_tokens}"
                + (f"|{enabled}" if enabled else ""))

    def inject(self, records: Sequence[Record], error_type: ErrorType, *, attempt: int = 0,
               progress: Callable[[int], None] | None = None) -> list[Injection]:
        error_type = ErrorType(error_type)
        out = []
        pending = 0
        for record in records:
            out.append(self.inject_text(record.response, error_type, key=record.id, attempt=attempt,
                                        question=record.question))
            pending += 1
            if progress and pending == 256:
                progress(pending)
                pending = 0
        if progress and pending:
            progress(pending)
        return out

    def inject_text(self, text: str, error_type: ErrorType | str, *, key: str, attempt: int = 0,
                    question: str | None = None) -> Injection:
        """One negative of ``text`` with ``error_type``; ``key`` (the record id) seeds the choices."""
        error_type = ErrorType(error_type)
        cfg = self.config
        if not text or not text.strip():
            return Injection(None, error_type, self.name, details={"perturbation": None,
                                                                   "reason": "empty response"})
        doc = Doc(text, question)
        # The order is fixed per (seed, record, type): a weighted random order (key = u ** (1 /
        # weight)). Attempt k starts at the k-th *applicable* one, so retries try another
        # perturbation; preconditions are checked lazily, only as far as needed.
        order_rng = _SplitMix(_seed(cfg.seed, key, error_type.value))
        enabled = self._enabled[error_type]
        order = sorted(enabled, key=lambda p: order_rng.random() ** (1.0 / p.weight), reverse=True)
        applicable: list[Perturbation] = []
        checked: dict[str, bool] = {}
        for p in order:
            checked[p.name] = ok = p.applies(doc)
            if ok:
                applicable.append(p)
                if len(applicable) > attempt:
                    break
        if not applicable:
            return Injection(None, error_type, self.name, details={"perturbation": None,
                                                                   "reason": "no applicable perturbation"})
        primary = applicable[attempt % len(applicable)]
        rng = _SplitMix(_seed(cfg.seed, key, error_type.value, attempt))
        at = order.index(primary)
        # retry the first at another place, then the others (each checks its own precondition)
        queue = [primary] * 3 + (order[at + 1:] + order[:at]) * 2

        edits: list[Edit] = []
        used: list[str] = []
        needs_answer = error_type is ErrorType.CORRECTNESS and doc.final_answer is not None
        for p in queue:
            if len(used) >= cfg.max_edits:
                break
            if p.name not in checked:
                checked[p.name] = p.applies(doc)
            if not checked[p.name]:
                continue
            new = p.make(doc, rng, edits)
            if not new or any(overlaps(e, edits) for e in new):
                continue
            trial = edits + new
            if not self._acceptable(doc, trial):
                continue
            edits = trial
            used.append(p.name)
            if self._enough(doc, edits):
                break
        if needs_answer and edits and not self._answer_changed(doc, edits):
            extra = make_final_answer(doc, rng, edits)
            if extra and self._acceptable(doc, edits + extra):
                edits += extra
                used.append("final_answer")
        if not edits or not self._enough(doc, edits):
            return Injection(None, error_type, self.name, details={
                "perturbation": used[0] if used else None, "reason": "change too small" if edits
                else "no perturbation could be applied", "tried": [p.name for p in queue]})
        return self._injection(doc, edits, used, error_type, attempt)

    # -- checks ---------------------------------------------------------------------------------
    def _enough(self, doc: Doc, edits: list[Edit]) -> bool:
        if any(e.perturbation in _MOVES for e in edits):
            # words traded between two edits: the local estimate over-counts, measure for real
            measured = measure_difference(doc.text, apply_edits(doc.text, edits))
            diff, changed = measured.difference, measured.changed_tokens
        else:
            diff, changed = doc.estimate(edits)
        t = self.verifier
        return diff >= t.min_difference * self.config.margin and changed >= t.min_changed_tokens

    @staticmethod
    def _answer_changed(doc: Doc, edits: list[Edit]) -> bool:
        fa = doc.final_answer
        return fa is not None and any(e.start <= fa[0] < e.end or e.start == fa[0] for e in edits)

    @staticmethod
    def _acceptable(doc: Doc, edits: list[Edit]) -> bool:
        """The verifier would reject refusal-like starts ("I can" -> "I cannot") and meta text;
        a whole non-negative number (a count, a GSM8K answer) must stay one."""
        for e in edits:
            old = doc.text[e.start:e.end]
            if _WHOLE.fullmatch(old) and _SIGNED.fullmatch(e.replacement) and not _WHOLE.fullmatch(e.replacement):
                return False  # "12" -> "-3" or "12" -> "7.5"
        first = min(e.start for e in edits)
        if first < 40:
            head = apply_edits(doc.text, [e for e in edits if e.start < 40])[:80]
            if _REFUSAL.search(head) and not _REFUSAL.search(doc.text[:80]):
                return False
        return not any(_META.search(e.replacement) for e in edits)

    def _injection(self, doc: Doc, edits: list[Edit], used: list[str], error_type: ErrorType,
                   attempt: int) -> Injection:
        text = doc.text
        edits = sorted(edits, key=lambda e: e.start)
        negative = apply_edits(text, edits)
        start, end = edits[0].start, max(e.end for e in edits)
        delta = len(negative) - len(text)
        details: dict[str, Any] = {
            "perturbation": used[0],
            "span": [start, end],
            "original": text[start:end],
            "replacement": negative[start:end + delta],
            "perturbations": list(dict.fromkeys(used)),
            "edits": [{"perturbation": e.perturbation, "span": [e.start, e.end], "original": text[e.start:e.end],
                       "replacement": e.replacement, **(e.info or {})} for e in edits],
            "attempt": attempt,
        }
        return Injection(negative, error_type, self.name, details=details)
