"""`seapo profile` on the embedded model: answers per second, batched vs one at a time.

    python bench/bench_profile.py [path/to/gsm8k/train.jsonl] [--n 16] [--batch-size 16] [--max-new-tokens 64]

Peer for the ratio: the same profile with the backend's batch size 1 (one prompt per forward
pass), in the same process, on the same prompts, with the reference judge. Goal: batched at least
3x the answers per second. Wall-clock time (what batching saves); on a shared machine the figure
moves with the load, so the load average is printed with it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from seapo.profile import ProfileConfig, profile

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "source" / "gsm8k" / "train.jsonl"
GOAL_RATIO = 3.0


def rate(data: str, n: int, batch_size: int, max_new_tokens: int) -> tuple[float, dict]:
    config = ProfileConfig(data=data, limit=n, max_new_tokens=max_new_tokens, chunk_size=n,
                           policy={"batch_size": batch_size}, show_progress=False)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = profile(out, config)
        elapsed = time.perf_counter() - start
    return n / elapsed, result.profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA), help="GSM8K-layout JSONL file")
    parser.add_argument("--n", type=int, default=16, help="problems to profile (default 16)")
    parser.add_argument("--batch-size", type=int, default=16, help="batched run's batch size (default 16)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="answer length limit (default 64)")
    args = parser.parse_args()
    print(f"{args.n} GSM8K problems from {args.data}, embedded model, max_new_tokens {args.max_new_tokens}, "
          f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rate(args.data, 2, 2, 4)  # warm-up: model load and caches outside the timings
    single, p1 = rate(args.data, args.n, 1, args.max_new_tokens)
    batched, p2 = rate(args.data, args.n, args.batch_size, args.max_new_tokens)
    print(f"one at a time: {single:.3f} answers/s")
    print(f"batched ({args.batch_size}): {batched:.3f} answers/s")
    print(f"ratio batched / one at a time: {batched / single:.2f}x (goal {GOAL_RATIO:.0f}x)  "
          f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"profiles: one at a time {p1['counts']} ({p1['unknown']} unknown), batched {p2['counts']} "
          f"({p2['unknown']} unknown)")


if __name__ == "__main__":
    main()
