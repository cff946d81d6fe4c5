"""LLM injector throughput on this machine: batched (batch 16) vs one-at-a-time generation.

Peer: the same backend, model and prompts with batch size 1 (plain sequential ``generate``).
Prints generated tokens per second for both and the ratio, in one run.

    python bench/bench_llm_injector.py [--n 16] [--max-new-tokens 128] [--model embedded]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from seapo.backends import GenerationRequest, make_backend
from seapo.inject.error_types import ErrorType
from seapo.inject.prompts import build_injection_prompt

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/source/gsm8k/train.jsonl"))
    parser.add_argument("--n", type=int, default=16, help="prompts (GSM8K solutions)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    rows = [json.loads(line) for line, _ in zip(open(args.data, encoding="utf-8"), range(args.n), strict=False)]
    types = list(ErrorType)
    requests = [GenerationRequest(messages=[{"role": "user", "content": build_injection_prompt(
        r["question"], r["answer"], types[i % 3])}], max_new_tokens=args.max_new_tokens) for i, r in enumerate(rows)]
    backend = make_backend(model=args.model, batch_size=args.batch_size, dtype=args.dtype)
    backend.generate([GenerationRequest(messages=r.messages, max_new_tokens=4) for r in requests[:2]])  # warm-up

    results = {}
    for label, batch_size in (("batched", args.batch_size), ("one-at-a-time", 1)):
        backend.config.batch_size = batch_size
        start = time.perf_counter()
        out = backend.generate(requests)
        seconds = time.perf_counter() - start
        tokens = sum(g.num_tokens for g in out)
        results[label] = tokens / seconds
        print(f"{label:>14}: batch {batch_size:>2}, {len(out)} prompts, {tokens} tokens in {seconds:.1f} s "
              f"= {tokens / seconds:.1f} tokens/s")
    print(f"model {backend.fingerprint()}, max_new_tokens {args.max_new_tokens}")
    print(f"ratio batched / one-at-a-time: {results['batched'] / results['one-at-a-time']:.2f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
