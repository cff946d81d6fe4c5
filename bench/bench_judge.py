"""Throughput of the reference judge on GSM8K pairs (gold solution vs a rules negative).

    python bench/bench_judge.py [path/to/gsm8k/train.jsonl] [--n 2000] [--seed 0]

Peer for the ratio: the goal of 5,000 verdicts per second on one core (issue 10). Timed with
process time (one core, whatever else the machine runs); the pairs are made before timing. Three
runs: the rules negatives with their perturbation record (what ``seapo inject`` judges), the same
negatives without it (a non-rules negative: final answers, arithmetic and the structural checks do
all the work), and the positives against themselves.
"""

from __future__ import annotations

import argparse
import time

from _shared import GSM8K_TRAIN, first_rows
from seapo.inject.error_types import ErrorType
from seapo.inject.rules import RulesInjector, RulesInjectorConfig
from seapo.judge import JudgeItem
from seapo.judge.reference import ReferenceJudge

DEFAULT_DATA = GSM8K_TRAIN
GOAL_PER_S = 5000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA), help="GSM8K-layout JSONL file")
    parser.add_argument("--n", type=int, default=2000, help="GSM8K problems (one negative each, types in turn)")
    parser.add_argument("--seed", type=int, default=0, help="rules injector seed")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (the best is reported)")
    args = parser.parse_args()

    rows = first_rows(args.data, args.n)
    injector = RulesInjector(RulesInjectorConfig(seed=args.seed))
    types = list(ErrorType)
    with_evidence, without, clean = [], [], []
    for i, r in enumerate(rows):
        et = types[i % 3]
        inj = injector.inject_text(r["answer"], et, key=str(i), question=r["question"])
        clean.append(JudgeItem(r["question"], r["answer"], r["answer"]))
        if inj.text is None:
            continue
        with_evidence.append(JudgeItem(r["question"], inj.text, r["answer"], claimed=et, evidence=inj.details))
        without.append(JudgeItem(r["question"], inj.text, r["answer"], claimed=et))
    judge = ReferenceJudge()
    print(f"{len(rows)} GSM8K problems from {args.data}; one core (process time), best of {args.repeat}")
    for label, items in (("with evidence", with_evidence), ("no evidence", without), ("clean", clean)):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.process_time()
            verdicts = judge.judge(items)
            best = min(best, time.process_time() - start)
        rate = len(items) / best
        decided = sum(v.finding(it.claimed) == "present" for it, v in zip(items, verdicts, strict=True)
                      if it.claimed) / max(1, sum(1 for it in items if it.claimed))
        extra = f"  claimed type present {decided:.1%}" if items[0].claimed else ""
        print(f"{label:>14}: {rate:8.0f} verdicts/s ({rate / GOAL_PER_S:.2f}x the 5,000/s goal){extra}")


if __name__ == "__main__":
    main()
