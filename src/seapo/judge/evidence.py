"""Rules evidence: confirm a rules negative's perturbation record against the text.

A rules negative carries how it was made (``Injection.details``): ``perturbation``,
``perturbations`` and ``edits: [{perturbation, span: [start, end], original, replacement, ...}]``,
spans in the *positive*. The record is confirmed only when every edit checks out:

1. its perturbation is a known one (:data:`seapo.inject.rules._perturb.BY_NAME`), whose own error
   type is what it proves (a ``final_answer`` edit in a correctness negative proves correctness);
2. it changes something (``replacement != original``);
3. where the reference is known, ``reference[start:end] == original``;
4. ``replacement`` stands in the response at ``start`` shifted by the length changes of the earlier
   edits (edits do not overlap; they are applied in span order), and the original is gone from there;
5. where the reference is known, applying all the edits to it gives exactly the response (nothing
   else changed: a record that explains only part of the edit explains nothing);
6. at least one edit is of the claimed type (when one is claimed).

Confirmed: the types of the edits are ``present``. Anything else is a ``mismatch`` with its reason,
and confirms nothing. A record in the older one-edit layout (``perturbation``, ``span``,
``original``, ``replacement`` and no ``edits``) is read as one edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seapo.inject.error_types import ErrorType
from seapo.inject.rules._perturb import BY_NAME

__all__ = ["EvidenceCheck", "check_evidence"]


@dataclass
class EvidenceCheck:
    """The outcome: ``confirmed``, ``mismatch`` (with ``reason``) or ``none`` (no record to check)."""

    status: str
    reason: str = ""
    types: frozenset[ErrorType] = frozenset()
    """The error types the confirmed edits prove."""
    perturbations: list[str] = field(default_factory=list)
    edits: list[tuple[str, str]] = field(default_factory=list)
    """(original, replacement) of each confirmed edit, in text order."""

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "types": sorted(t.value for t in self.types),
                "perturbations": self.perturbations}


def _edits(evidence: dict[str, Any]) -> list[dict[str, Any]] | None:
    edits = evidence.get("edits")
    if edits is None and evidence.get("perturbation") and "span" in evidence:
        edits = [{k: evidence.get(k) for k in ("perturbation", "span", "original", "replacement")}]
    return edits if isinstance(edits, list) else None


def check_evidence(evidence: dict[str, Any] | None, response: str, reference: str | None = None,
                   claimed: ErrorType | str | None = None) -> EvidenceCheck:
    """Check one perturbation record (see the module docstring)."""
    if not evidence or not (evidence.get("edits") or evidence.get("perturbation")):
        return EvidenceCheck("none")

    def bad(reason: str) -> EvidenceCheck:
        return EvidenceCheck("mismatch", reason)

    edits = _edits(evidence)
    if not edits:
        return bad("the record has no edits")
    parsed = []
    for k, e in enumerate(edits):
        try:
            name = e["perturbation"]
            start, end = (int(x) for x in e["span"])
            original, replacement = e["original"], e["replacement"]
        except (KeyError, TypeError, ValueError):
            return bad(f"edit {k} lacks perturbation, span, original or replacement")
        if not isinstance(original, str) or not isinstance(replacement, str) or not 0 <= start <= end:
            return bad(f"edit {k} has a malformed span or text")
        if name not in BY_NAME:
            return bad(f"edit {k}: unknown perturbation {name!r}")
        parsed.append((start, end, original, replacement, name))
    parsed.sort(key=lambda e: e[0])
    shift = 0
    previous_end = -1
    pieces: list[str] = []
    for k, (start, end, original, replacement, name) in enumerate(parsed):
        if start < previous_end:
            return bad(f"edits overlap at {start}")
        if replacement == original:
            return bad(f"edit {k} ({name}) changes nothing")
        if end - start != len(original):
            return bad(f"edit {k} ({name}): span {start}..{end} does not fit its original {original!r}")
        if reference is not None:
            if reference[start:end] != original:
                return bad(f"edit {k} ({name}): the reference does not hold {original!r} at {start}")
            pieces.append(reference[max(previous_end, 0):start])
            pieces.append(replacement)
        at = start + shift
        if response[at:at + len(replacement)] != replacement:
            return bad(f"edit {k} ({name}): the response does not hold {replacement!r} at {at}")
        if original and response.startswith(original, at) and not replacement.startswith(original):
            return bad(f"edit {k} ({name}): the original {original!r} is still there")
        shift += len(replacement) - len(original)
        previous_end = end
    if reference is not None:
        pieces.append(reference[max(previous_end, 0):])
        if "".join(pieces) != response:
            return bad("the response differs from the reference by more than the recorded edits")
    names = list(dict.fromkeys(e[4] for e in parsed))
    types = frozenset(BY_NAME[n].error_type for n in names)
    if claimed is not None and ErrorType(claimed) not in types:
        return bad(f"no edit is a {ErrorType(claimed).value} perturbation ({', '.join(names)})")
    return EvidenceCheck("confirmed", "", types, names, [(e[2], e[3]) for e in parsed])
