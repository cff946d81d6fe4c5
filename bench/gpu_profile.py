"""Where the GPU bench's time goes: seapo's greedy loop against ``model.generate`` step by step, and a profile
of ``seapo train --algo dpo``, on the same random Qwen2.5-1.5B-shaped model as bench/bench_gpu.py.

    python bench/gpu_profile.py [--smoke] [--new-tokens 64] [--batch 32] [--pairs 128] [--skip-train]

Prints, in one run on one loaded model (bf16 on CUDA, fp32 on CPU):

* milliseconds per decoding step at batch 1 and at ``--batch``: seapo's transformers backend (its own greedy
  loop) against ``model.generate`` greedy with the dynamic cache and with ``cache_implementation="static"``
  (no compile), the same prompts, every row forced to ``--new-tokens`` (EOS ignored on both sides: a random
  model's completions are otherwise of chance length);
* the torch profiler's top operators (by self CPU time, and by CUDA time on a GPU) over 16 steps of seapo's loop
  at batch 1: whether a step waits on the host (Python, launches, synchronisations) or on the device;
* ``cProfile`` of one ``seapo train --algo dpo`` run on ``--pairs`` SeaPO-shaped pairs: the 30 functions with
  the most cumulative time, so set-up, the reference pass and the shared-prefix forward can be told apart.

``--smoke``: tiny dimensions, on CPU; checks the script, its figures mean nothing (docs/gpu.md).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import bench_gpu  # noqa: E402 - the model, prompts and pairs of the GPU bench


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def ms_per_step(fn, steps: int) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - t0) * 1000 / steps


def decode(args, model_dir: Path) -> None:
    import torch

    from seapo.backends import make_backend

    gpu = torch.cuda.is_available()
    backend = make_backend(name="transformers", model=str(model_dir), dtype="bf16" if gpu else "fp32",
                           batch_size=args.batch)
    with backend:
        model, tok = backend.model, backend.tokenizer
        backend._eos = {-1}  # noqa: SLF001 - no token ends a row: each runs to max_new_tokens, as generate does below
        requests = bench_gpu.injection_requests(args.batch, args.new_tokens)
        ids = [backend.encode(r) for r in requests]
        backend.generate(requests[:2])  # warm-up: kernels, allocator

        def hf(batch: int, static: bool) -> None:
            rows = ids[:batch]
            width = max(len(r) for r in rows)
            pad = tok.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=model.device)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device)
            extra = {"cache_implementation": "static"} if static else {}
            model.generate(input_ids=input_ids, attention_mask=mask, do_sample=False,
                           max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, pad_token_id=pad, **extra)

        print(f"decoding, {args.new_tokens} new tokens per row, ms per step (prefill included):", flush=True)
        for batch in (1, args.batch):
            ours = ms_per_step(lambda b=batch: backend.generate(requests[:b]), args.new_tokens)
            line = f"  batch {batch}: seapo loop {ours:.1f}"
            for label, static in (("generate dynamic", False), ("generate static", True)):
                try:
                    hf(batch, static)  # warm-up (a static cache is laid out once per shape)
                    theirs = ms_per_step(lambda b=batch, s=static: hf(b, s), args.new_tokens)
                    line += f", {label} {theirs:.1f} (seapo {theirs / ours:.2f}x)"
                except Exception as exc:  # noqa: BLE001 - report and go on
                    line += f", {label} failed: {type(exc).__name__}: {str(exc)[:200]}"
            print(line, flush=True)

        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
        short = bench_gpu.injection_requests(1, 16)
        with profile(activities=activities) as prof:
            backend.generate(short)
            sync()
        print("profile of 16 steps of seapo's loop at batch 1, by self CPU time:", flush=True)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), flush=True)
        if gpu:
            print("by CUDA time:", flush=True)
            print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=10), flush=True)


def train_profile(args, model_dir: Path, work: Path) -> None:
    from seapo.io import write_jsonl

    write_jsonl(work / "pairs.jsonl", bench_gpu.synthetic_pairs(args.pairs))
    ns = argparse.Namespace(epochs=1.0, max_length=args.max_length, train_batch=16)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    result = bench_gpu.side_train_seapo(ns, str(model_dir), work / "pairs.jsonl", str(work / "seapo"))
    profiler.disable()
    print(f"seapo train --algo dpo, {args.pairs} pairs: {time.perf_counter() - t0:.1f} s; settings "
          f"{result['settings']}", flush=True)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    print(out.getvalue(), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--pairs", type=int, default=128)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-decode", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.new_tokens, args.batch, args.pairs, args.max_length = 8, 4, 4, 192
    bench_gpu.check_environment(need_gpu=not args.smoke)
    work = Path(tempfile.mkdtemp(prefix="gpu-profile-"))
    bench_gpu.build_model(work / "model", bench_gpu.SMOKE if args.smoke else bench_gpu.QWEN25_15B,
                          bench_gpu.tokenizer_folder(None))
    if not args.skip_decode:
        decode(args, work / "model")
    if not args.skip_train:
        train_profile(args, work / "model", work)


if __name__ == "__main__":
    main()
