"""Read any pairs file for the audit, through ``seapo prepare``'s own layout detection.

seapo's ``pairs.jsonl`` (typed by its ``error_type``, split by its ``record_id``), and other tools'
chosen vs rejected layouts: LLaMA-Factory sharegpt/alpaca ranking rows, UltraFeedback binarized
(string or message-list ``chosen``/``rejected``), TRL preference rows, seapo records with a
``rejected``. Rows of other tools have no error type: they are audited overall, split by prompt.
A row that cannot be read is not lost: it is in :attr:`PairsFile.rejects` with its file, line,
field and reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seapo.audit.config import AuditConfig
from seapo.audit.core import AuditPair, AuditReport, audit_pairs
from seapo.data.layouts import ROW, FieldOptions, RowError, type_name
from seapo.data.sources import open_local
from seapo.errors import InputError


@dataclass
class PairsFile:
    """The pairs of one file, and the rows that could not be used."""

    path: str
    layout: str | None
    read: int = 0
    pairs: list[AuditPair] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    """``{"file", "line", "field", "reason"}`` per unusable row (``read == len(pairs) + len(rejects)``)."""


def _prompt_group(prompt: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def read_pairs(path: str | Path, *, format: str = "auto") -> PairsFile:
    """The pairs in ``path`` (``format``: a layout name of ``seapo prepare``, or ``auto``)."""
    # prepare's own detection (the private helper is its single implementation: no second parser)
    from seapo.data.prepare import PrepareConfig, _choose_layout

    source = open_local(Path(path))
    layout, rows = _choose_layout(source.rows, PrepareConfig(source=str(path), format=format), source)
    location = source.location or str(path)
    result = PairsFile(location, layout.name if layout else None)
    opts = FieldOptions()
    for raw in rows:
        result.read += 1

        def reject(field_name: str, reason: str, raw=raw) -> None:
            result.rejects.append({"file": location, "line": raw.line, "field": field_name, "reason": reason})

        if raw.error is not None:
            reject(raw.field, raw.error)
            continue
        if not isinstance(raw.row, dict) or layout is None:
            reject(ROW, f"expected an object with fields, got {type_name(raw.row)}")
            continue
        try:
            converted = layout.convert(raw.row, opts)
        except RowError as exc:  # a KTO row labelled false (RowFiltered) is no pair either
            reject(exc.field, exc.reason)
            continue
        if converted.rejected is None:
            reject("rejected", "missing or empty: a pair needs a rejected response")
            continue
        error_type = raw.row.get("error_type")
        if error_type is not None and not isinstance(error_type, str):
            reject("error_type", f"expected text, got {type_name(error_type)}")
            continue
        group = raw.row.get("record_id")
        group = group if isinstance(group, str) and group else _prompt_group(converted.prompt)
        result.pairs.append(AuditPair(group, converted.response, converted.rejected, error_type))
    if result.read == 0:
        raise InputError("no rows: nothing to audit", path=location)
    return result


def audit_file(path: str | Path, config: AuditConfig | None = None, *,
               format: str = "auto") -> tuple[AuditReport, PairsFile]:
    """Read ``path`` (:func:`read_pairs`) and audit its pairs; the report and what was read."""
    pairs_file = read_pairs(path, format=format)
    if not pairs_file.pairs:
        first = pairs_file.rejects[0]
        raise InputError(f"none of the {pairs_file.read} rows is a usable pair (first: {first['reason']})",
                         path=pairs_file.path, line=first["line"], field=first["field"])
    return audit_pairs(pairs_file.pairs, config), pairs_file
