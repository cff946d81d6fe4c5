"""Write a finished injection run: pairs, KTO rows, LLaMA-Factory entries, rejects, summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from seapo.audit.config import AuditConfig
from seapo.data.schema import Record
from seapo.inject.error_types import ErrorType
from seapo.inject.store import ItemResult
from seapo.inject.strategies import Plan
from seapo.io import write_json, write_jsonl
from seapo.outputs import OutputSet

OUTPUT_FILES = {
    "pairs": "pairs.jsonl",
    "negatives": "negatives.jsonl",
    "kto": "kto.jsonl",
    "rejected": "rejected.jsonl",
    "plan": "plan.jsonl",
    "dataset_info": "dataset_info.json",
    "summary": "summary.json",
}
SET_MARKERS = ("injections.sqlite", OUTPUT_FILES["plan"])
"""Files only a seapo inject folder has (the resume store, the plan): a reader finding one beside the
file it reads but no manifest refuses (generic names like dataset_info.json do not count)."""
STAGE = "inject"


def rerun_hint(out_dir: Path | str) -> str:
    return (f"rerun `seapo inject RECORDS --out {out_dir}` (it resumes from its store), or `seapo run` with the "
            f"same --out")


_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
         "system_tag": "system"}
DATASET_INFO = {
    "seapo_dpo": {"file_name": OUTPUT_FILES["pairs"], "formatting": "sharegpt", "ranking": True,
                  "columns": {"messages": "prompt", "chosen": "chosen", "rejected": "rejected"}, "tags": _TAGS},
    "seapo_kto": {"file_name": OUTPUT_FILES["kto"], "formatting": "sharegpt",
                  "columns": {"messages": "messages", "kto_tag": "label"}, "tags": _TAGS},
}


def pair_row(record: Record, item: ItemResult) -> dict[str, Any]:
    return {
        "id": f"{record.id}-{item.error_type}",
        "record_id": record.id,
        "prompt": record.prompt,
        "chosen": {"role": "assistant", "content": record.response},
        "rejected": {"role": "assistant", "content": item.negative},
        "error_type": item.error_type,
        "injector": item.injector,
        "fallback": item.fallback,
        "difference": item.difference,
        "changed_tokens": item.changed_tokens,
        "attempts": len(item.attempts),
        "details": item.details,
        # The winning attempt is the last one (an item stops at its first pass).
        "judge": item.attempts[-1].judge if item.attempts else None,
        "fluency": item.attempts[-1].fluency if item.attempts else None,
    }


def kto_rows(pair: dict[str, Any]) -> list[dict[str, Any]]:
    """The official KTO layout: the full conversation and whether it is desirable."""
    return [
        {"id": f"{pair['id']}-{label}", "record_id": pair["record_id"], "error_type": pair["error_type"],
         "messages": [*pair["prompt"], side], "label": label}
        for side, label in ((pair["chosen"], True), (pair["rejected"], False))
    ]


def summarize(records: Sequence[Record], items: dict[tuple[str, str], ItemResult], plan: Plan,
              error_types: Sequence[ErrorType]) -> dict[str, Any]:
    per_type: dict[str, Any] = {}
    for et in error_types:
        mine = [items[(r.id, et.value)] for r in records if et in plan.get(r.id, ()) and (r.id, et.value) in items]
        accepted = [i for i in mine if i.accepted]
        reasons = Counter(a.reason for i in mine for a in i.attempts if not a.passed)
        judged = [a.judge for i in mine for a in i.attempts if a.judge is not None]
        findings = Counter(j["findings"].get(et.value, "unknown") for j in judged)
        per_type[et.value] = {
            "planned": sum(1 for r in records if et in plan.get(r.id, ())),
            "attempted": len(mine),
            "accepted": sum(1 for i in accepted if not i.fallback),
            "fallen_back": sum(1 for i in accepted if i.fallback),
            "rejected": len(mine) - len(accepted),
            "mean_difference": round(mean(i.difference for i in accepted), 4) if accepted else None,
            "mean_attempts": round(mean(len(i.attempts) for i in mine), 3) if mine else None,
            "failed_attempt_reasons": dict(reasons.most_common()),
            # Judged attempts (the verifier passed them): how often the judge found the injector's label.
            "judged_attempts": len(judged),
            "judge_rejected": sum(n for r, n in reasons.items() if r and r.startswith("judge_")),
            "judge_findings": {f: findings.get(f, 0) for f in ("present", "absent", "unknown")},
            "judge_agreement": round(findings["present"] / len(judged), 4) if judged else None,
            # The fluency gate (when on): attempts it scored, and those it turned away as broken text.
            "fluency_scored": sum(1 for i in mine for a in i.attempts if a.fluency is not None),
            "fluency_rejected": reasons.get("disfluent", 0),
        }
    return per_type


def shortcut_audit(pairs: Sequence[dict[str, Any]], config: AuditConfig) -> dict[str, Any]:
    """summary.json's ``shortcut_audit``: :func:`seapo.audit.audit_pairs` over the accepted pairs, split
    by record (a few pairs: every type 'not enough pairs', at once, nothing trained)."""
    from seapo.audit import AuditPair, audit_pairs

    report = audit_pairs([AuditPair(p["record_id"], p["chosen"]["content"], p["rejected"]["content"],
                                    p["error_type"]) for p in pairs], config)
    return report.to_dict()


def write_outputs(out_dir: Path, records: Sequence[Record], items: dict[tuple[str, str], ItemResult], plan: Plan,
                  error_types: Sequence[ErrorType], strategy: str, extra_summary: dict[str, Any],
                  settings: Any = None, audit: AuditConfig | None = None) -> dict[str, Any]:
    """Write every output file from the store's contents and the plan, as one output set
    (:class:`seapo.outputs.OutputSet`: ``_complete.json`` written last); returns the summary.

    Only planned (record, type) items count: the store may also hold items of an earlier run
    with another strategy, which the plan leaves out. ``settings``: what decided these outputs
    (its hash goes into the manifest; default: the summary without its timing). ``audit``: the
    shortcut audit's settings (default: its defaults; ``shortcut_audit=False`` leaves it out of the summary).
    """
    pairs, rejected = [], []
    seen: set[str] = set()
    for record in records:
        if record.id in seen:  # a record given twice is one item
            continue
        seen.add(record.id)
        for et in plan.get(record.id, ()):
            item = items.get((record.id, et.value))
            if item is None:
                continue
            if item.accepted:
                pairs.append(pair_row(record, item))
            else:
                rejected.append({"record_id": record.id, "error_type": et.value, "reason": item.reason,
                                 "attempts": [a.__dict__ for a in item.attempts]})
    summary = {
        "records": len(records),
        "strategy": strategy,
        "error_types": [et.value for et in error_types],
        "per_type": summarize(list({r.id: r for r in records}.values()), items, plan, error_types),
        "pairs": len(pairs),
        "negatives": len(pairs),
        "rejected_items": len(rejected),
        "mean_difference": round(mean(p["difference"] for p in pairs), 4) if pairs else None,
        **extra_summary,
    }
    audit = audit or AuditConfig()
    if audit.shortcut_audit:
        summary["shortcut_audit"] = shortcut_audit(pairs, audit)
    output_set = OutputSet(out_dir, STAGE, settings if settings is not None else
                           {k: v for k, v in summary.items()
                            if k not in ("wall_time_s", "resumed_items", "shortcut_audit")},
                           fix=rerun_hint(out_dir))
    publish(output_set, pairs, rejected, ({"record_id": rid, "error_types": [t.value for t in types]}
                                          for rid, types in plan.items()), summary)
    return summary


def publish(output_set: OutputSet, pairs: Sequence[dict[str, Any]], rejected: Sequence[dict[str, Any]],
            plan_rows: Any, summary: dict[str, Any]) -> None:
    """Write the inject folder's files (every one in :data:`OUTPUT_FILES`) as ``output_set``: begun first,
    committed last, so readers refuse the folder while its files may mix two runs."""
    out_dir = output_set.folder
    output_set.begin()
    # Every accepted negative is planned, so negatives.jsonl and pairs.jsonl hold the same rows.
    write_jsonl(out_dir / OUTPUT_FILES["negatives"], pairs)
    write_jsonl(out_dir / OUTPUT_FILES["pairs"], pairs)
    write_jsonl(out_dir / OUTPUT_FILES["kto"], (row for p in pairs for row in kto_rows(p)))
    write_jsonl(out_dir / OUTPUT_FILES["rejected"], rejected)
    write_jsonl(out_dir / OUTPUT_FILES["plan"], plan_rows)
    write_json(out_dir / OUTPUT_FILES["dataset_info"], DATASET_INFO)
    write_json(out_dir / OUTPUT_FILES["summary"], summary)
    output_set.commit(OUTPUT_FILES.values())
