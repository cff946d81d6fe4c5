"""Negatives from the source data set's own rejected responses: the vanilla baseline, not SeaPO.

A preference data set such as UltraFeedback binarized pairs each prompt's ``chosen`` response with a
``rejected`` one; ``seapo prepare`` keeps that rejected response on the record. Training against it is
the baseline SeaPO is measured against (the paper's "vanilla" rows). :func:`source_negatives` writes
those pairs as an ``inject`` output set -- the same files, layout and manifest as ``seapo inject`` --
so ``seapo train``, ``seapo run`` (``negatives: source``), the report and the inspector read them like
any injection. Their error type is ``source``: nothing is known about what is wrong with them, which
is the point of the comparison. Records without a usable rejected response go to ``rejected.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seapo.audit.config import AuditConfig
from seapo.data.schema import Record, read_records
from seapo.inject.outputs import STAGE, publish, rerun_hint, shortcut_audit
from seapo.outputs import OutputSet

SOURCE_TYPE = "source"
"""The error type of a source negative: the data set's own rejected response, of no known error type."""


def source_pair(record: Record) -> dict[str, Any]:
    """The ``pairs.jsonl`` row of a record and its own rejected response."""
    return {"id": f"{record.id}-{SOURCE_TYPE}", "record_id": record.id, "prompt": record.prompt,
            "chosen": {"role": "assistant", "content": record.response},
            "rejected": {"role": "assistant", "content": record.rejected},
            "error_type": SOURCE_TYPE, "injector": SOURCE_TYPE, "fallback": False, "difference": None,
            "changed_tokens": None, "attempts": 0, "details": {}, "judge": None, "fluency": None}


def _unusable(record: Record) -> str | None:
    if record.rejected is None or not record.rejected.strip():
        return "no_source_rejected"
    if record.rejected.strip() == record.response.strip():
        return "source_rejected_equals_chosen"
    return None


def source_negatives(records_path: str | Path, out_dir: str | Path, *, audit: AuditConfig | None = None
                     ) -> dict[str, Any]:
    """Write ``out_dir`` as an inject output set whose negatives are the records' own rejected responses;
    returns its summary (``summary.json``). Every record ends up in ``pairs.jsonl`` or, with the reason,
    in ``rejected.jsonl``. Deterministic: the same records give the same files."""
    out_dir = Path(out_dir)
    records = read_records(records_path)
    pairs, rejected, seen = [], [], set()
    for record in records:
        if record.id in seen:  # a record given twice is one item, as in seapo inject
            continue
        seen.add(record.id)
        reason = _unusable(record)
        if reason is None:
            pairs.append(source_pair(record))
        else:
            rejected.append({"record_id": record.id, "error_type": SOURCE_TYPE, "reason": reason, "attempts": []})
    reasons: dict[str, int] = {}
    for row in rejected:
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
    summary: dict[str, Any] = {
        "records": len(seen), "strategy": SOURCE_TYPE, "error_types": [SOURCE_TYPE],
        "injector_fingerprint": SOURCE_TYPE, "fallback": "none", "judge": "none",
        "per_type": {SOURCE_TYPE: {"planned": len(seen), "attempted": len(seen), "accepted": len(pairs),
                                   "fallen_back": 0, "rejected": len(rejected), "mean_difference": None,
                                   "mean_attempts": None, "failed_attempt_reasons": reasons}},
        "pairs": len(pairs), "negatives": len(pairs), "rejected_items": len(rejected), "mean_difference": None,
        "note": "negatives are the source data set's own rejected responses (the vanilla baseline), not injected "
                "errors"}
    audit = audit or AuditConfig()
    if audit.shortcut_audit:  # the same surface-cue audit as injected pairs: a data set's own pairs as the peer
        summary["shortcut_audit"] = shortcut_audit(pairs, audit)
    output_set = OutputSet(out_dir, STAGE, {k: v for k, v in summary.items() if k != "shortcut_audit"},
                           fix=rerun_hint(out_dir))
    publish(output_set, pairs, rejected,
            ({"record_id": p["record_id"], "error_types": [SOURCE_TYPE]} for p in pairs), summary)
    return summary
