"""Separation and cost of the fluency gate on the hand-checked rules negatives.

    python bench/bench_fluency.py [--shared ../shared/data] [--dtypes bf16,fp32]

The pairs: tests/inject/data/fluency_pairs.jsonl (54 rules negatives of the UltraFeedback sample and
the DPO demo set, each labelled fluent or broken by hand), rebuilt from the shared data. Prints each
pair's drop, precision/recall of "broken" at several thresholds, and pairs/s per dtype. Peer for the
ratio: the rules injector's goal of 2,000 responses/s (the gate's cost on top of it). Wall time on
a shared machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.inject.fluency_fixture import load_fluency_pairs  # noqa: E402

from seapo.inject.fluency import FluencyConfig, FluencyGate  # noqa: E402

RULES_GOAL_PER_S = 2000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--dtypes", default="bf16,fp32")
    args = parser.parse_args()
    rows = load_fluency_pairs(Path(args.shared))
    items = [(r["positive"], r["negative"]) for r in rows]
    broken = [r["label"] == "broken" for r in rows]
    print(f"{len(rows)} hand-checked pairs, {sum(broken)} broken; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    drops = None
    for dtype in args.dtypes.split(","):
        gate = FluencyGate(FluencyConfig(dtype=dtype)).load()
        gate.drops(items[:2])  # warm-up
        start = time.perf_counter()
        drops = gate.drops(items)
        rate = len(items) / (time.perf_counter() - start)
        print(f"{dtype}: {rate:.2f} pairs/s ({RULES_GOAL_PER_S / rate:.0f}x slower than the rules injector's "
              f"{RULES_GOAL_PER_S:.0f}/s goal); load average {os.getloadavg()[0]:.2f}")
        gate.close()
    assert drops is not None
    for threshold in (6.0, 8.0, 9.0, 10.0, 11.0, 12.0):
        flagged = [d is not None and d > threshold for d in drops]
        tp = sum(f and b for f, b in zip(flagged, broken, strict=True))
        fp = sum(f and not b for f, b in zip(flagged, broken, strict=True))
        print(f"max_drop {threshold:5.1f}: flags {sum(flagged):2d}, precision {tp / max(1, tp + fp):.2f}, "
              f"recall {tp / sum(broken):.2f}{'  (default)' if threshold == FluencyConfig().max_drop else ''}")
    for row, drop in sorted(zip(rows, drops, strict=True), key=lambda t: t[1] if t[1] is not None else -99):
        print(f"{drop:7.2f} {row['label']:7} {row['error_type']:13} {row['perturbation']:20} {row['note']}")


if __name__ == "__main__":
    main()
