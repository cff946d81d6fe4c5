"""Shortcut audit: can a shallow model tell negatives from positives by surface cues alone?

For each shared data set, the rules injector (``--strategy all``) makes negatives; seapo.audit trains
a word 1-3-gram logistic regression on 70% of the records (positive = 0, negative = 1) and, on the
other 30%, counts how often it scores a pair's negative above its own positive. 0.5 means the text
gives no shortcut; 1.0 means every negative is recognisable without reading for errors. The same
classifier on the data set's own chosen vs rejected answers is the reference. Length figures: how
often the negative is the longer text, and the mean length ratio negative / positive.

The measurement itself is seapo.audit (docs/audit.md; in every injection run's summary.json):

    .venv/bin/python experiments/shortcut_audit.py [--shared ../shared/data] [--gsm8k-rows 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pairs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _row(name: str, what: str, audit) -> str:
    length, accuracy = audit.length, audit.accuracy if audit.accuracy is not None else audit.status
    return (f"| {name} | {what} | {audit.pairs} | {accuracy} {audit.interval or ''} | {length['negative_longer']} "
            f"| {length['mean_ratio']} | {length['median_ratio']} |")


def audit(name: str, records: Path, out: Path) -> list[str]:
    """The rules negatives of ``records`` and the data set's own rejected answers, audited."""
    import seapo
    from seapo.audit import AuditPair, audit_file, audit_pairs

    result = seapo.inject(records, out, seapo.InjectConfig(injector="rules", strategy="all", show_progress=False))
    report, _ = audit_file(result.pairs_path)
    rows = [_row(name, et, a) for et, a in report.per_type.items()]
    own = [AuditPair(r["id"], r["response"], r["rejected"]) for r in map(json.loads, records.read_text().splitlines())
           if r.get("rejected")]
    if own:
        rows.append(_row(name, "the data set's own rejected", audit_pairs(own).overall))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--gsm8k-rows", type=int, default=1000)
    args = parser.parse_args()
    import seapo

    shared = Path(args.shared)
    sources = {"dpo_en_demo": (shared / "preference" / "dpo_en_demo.json", None),
               "ultrafeedback_1k": (shared / "source" / "ultrafeedback" / "train_1k.jsonl", None),
               "gsm8k": (shared / "source" / "gsm8k" / "train.jsonl", args.gsm8k_rows)}
    print("| data | negatives | pairs | negative scored above its positive [95% interval] | negative longer | "
          "mean length ratio | median length ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, limit) in sources.items():
            records = Path(tmp) / f"{name}.jsonl"
            seapo.prepare(path, out=records, limit=limit, progress=False)
            for row in audit(name, records, Path(tmp) / name):
                print(row, flush=True)


if __name__ == "__main__":
    main()
