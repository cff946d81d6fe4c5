"""Speed of the shortcut audit (seapo.audit.audit_pairs) on 60,000 rules pairs.

    python bench/bench_audit.py [--shared ../shared/data] [--pairs 60000] [--seed 0]

The pairs: rules-injector negatives (every type) of the shared UltraFeedback sample and of GSM8K,
repeated across injector seeds until --pairs is reached (a seed's negatives differ, so the texts
do). Peer for the ratio: the goal of 60 s for 60,000 pairs (issue 11). Wall time, on a shared
machine: say its load when you report it (printed below).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import seapo
from seapo.audit import AuditConfig, AuditPair, audit_pairs
from seapo.data.schema import read_records
from seapo.inject.error_types import ErrorType
from seapo.inject.rules import RulesInjector, RulesInjectorConfig

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 60.0


def rules_pairs(records: list, seed: int, tag: str) -> list[AuditPair]:
    injector = RulesInjector(RulesInjectorConfig(seed=seed))
    pairs = []
    for et in ErrorType:
        for r in records:
            out = injector.inject_text(r.response, et, key=r.id, question=r.question)
            if out.text and out.text != r.response:
                pairs.append(AuditPair(f"{tag}-{seed}-{r.id}", r.response, out.text, et.value))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--pairs", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=0, help="the audit's seed")
    args = parser.parse_args()
    shared = Path(args.shared)
    with tempfile.TemporaryDirectory() as tmp:
        sets = {}
        for name, path in (("ultrafeedback", shared / "source" / "ultrafeedback" / "train_1k.jsonl"),
                           ("gsm8k", shared / "source" / "gsm8k" / "train.jsonl")):
            out = Path(tmp) / f"{name}.jsonl"
            seapo.prepare(path, out=out, progress=False)
            sets[name] = read_records(out)
    pairs: list[AuditPair] = []
    seed = 0
    made = time.perf_counter()
    while len(pairs) < args.pairs:
        for name, records in sets.items():
            pairs += rules_pairs(records, seed, name)
        seed += 1
    pairs = pairs[:args.pairs]
    print(f"{len(pairs)} pairs (rules seeds 0-{seed - 1}, UltraFeedback sample + GSM8K) made in "
          f"{time.perf_counter() - made:.1f} s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    start = time.perf_counter()
    report = audit_pairs(pairs, AuditConfig(seed=args.seed))
    elapsed = time.perf_counter() - start
    for name, audit in [("overall", report.overall), *report.per_type.items()]:
        print(f"{name:>13}: {audit.pairs:6d} pairs, accuracy {audit.accuracy} {audit.interval}, "
              f"median length ratio {audit.length['median_ratio']}")
    print(f"audit of {len(pairs)} pairs: {elapsed:.1f} s ({GOAL_S / elapsed:.2f}x the {GOAL_S:.0f} s goal: "
          f"{'met' if elapsed <= GOAL_S else 'NOT met'}); load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
