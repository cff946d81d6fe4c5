"""Throughput of the rules injector on GSM8K solutions, and the verifier's pass rate.

    python bench/bench_rules.py [path/to/gsm8k/train.jsonl] [--n 2000] [--seed 0]

Peer for the ratio: the goal of 2,000 responses per second on one core (the LLM injector on
the embedded model does a few responses per second on this machine).
"""

from __future__ import annotations

import argparse
import time

from _shared import GSM8K_TRAIN, first_rows
from seapo.inject.error_types import ErrorType
from seapo.inject.rules import RulesInjector, RulesInjectorConfig
from seapo.inject.verify import Verifier

DEFAULT_DATA = GSM8K_TRAIN
GOAL_PER_S = 2000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA), help="GSM8K-layout JSONL file")
    parser.add_argument("--n", type=int, default=2000, help="solutions to inject (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="rules injector seed")
    args = parser.parse_args()

    rows = first_rows(args.data, args.n)
    injector = RulesInjector(RulesInjectorConfig(seed=args.seed))
    verifier = Verifier()
    total_time = 0.0
    total_n = total_pass = 0
    print(f"{len(rows)} GSM8K solutions from {args.data}")
    for et in ErrorType:
        start = time.process_time()
        outs = [injector.inject_text(r["answer"], et, key=str(i), question=r["question"])
                for i, r in enumerate(rows)]
        elapsed = time.process_time() - start
        passed = sum(verifier.check(r["answer"], o.text).passed for r, o in zip(rows, outs, strict=True))
        total_time += elapsed
        total_n += len(rows)
        total_pass += passed
        print(f"{et.value:>13}: {len(rows) / elapsed:8.0f} responses/s "
              f"({len(rows) / elapsed / GOAL_PER_S:.2f}x goal)  verifier pass {passed / len(rows):.2%}")
    rate = total_n / total_time
    print(f"{'overall':>13}: {rate:8.0f} responses/s ({rate / GOAL_PER_S:.2f}x the 2,000/s goal)  "
          f"verifier pass {total_pass / total_n:.2%}")


if __name__ == "__main__":
    main()
