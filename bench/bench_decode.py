"""Where a decoding step's time goes on this machine: the transformers backend's ``model.generate``.

For the embedded model, at batch 1, 16 and 64, in bf16 and fp32, with transformers' default
(dynamic, growing) KV cache and with its static cache (fixed shapes), this prints milliseconds per
decoding step (prefill subtracted), tokens/s, and the ratio to the memory-bandwidth floor measured
here (one step must read every weight once). With ``--profile`` it also prints the top operators of
one configuration from torch's profiler. Peer: today's code path (dynamic cache), side by side.

    python bench/bench_decode.py [--model embedded] [--new-tokens 64] [--batches 1,16,64] [--profile]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from seapo.models import load_causal_lm, load_tokenizer, resolve_model

PROMPT = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
          "How many clips did Natalia sell altogether in April and May? Explain each step.")


def read_bandwidth_gb_s(megabytes: int = 1024, repeats: int = 5) -> float:
    """Memory read bandwidth of this machine (a sum over 1 GiB of fp32, so every byte is read once
    and nothing is written), best of ``repeats``: what a decoding step needs to read its weights."""
    data = torch.ones(megabytes * 2**20 // 4, dtype=torch.float32)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - t)
    return data.numel() * 4 / best / 1e9


def decode(model, ids: torch.Tensor, new_tokens: int, cache: str) -> float:
    """Seconds for ``new_tokens`` forced decoding steps after the prefill."""
    kwargs = dict(do_sample=False, pad_token_id=0, eos_token_id=None, top_k=None, top_p=None, temperature=None)
    if cache == "static":
        kwargs["cache_implementation"] = "static"
    mask = torch.ones_like(ids)

    def run(n: int) -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, **kwargs)
        return time.perf_counter() - t

    run(2)  # warm-up (oneDNN packing, static cache allocation)
    prefill = min(run(1) for _ in range(2))
    return run(new_tokens + 1) - prefill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--dtypes", default="bf16,fp32")
    parser.add_argument("--caches", default="dynamic,static")
    parser.add_argument("--profile", action="store_true", help="torch profiler top operators at batch 16, bf16")
    args = parser.parse_args()

    gb_s = read_bandwidth_gb_s()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}, "
          f"read bandwidth {gb_s:.1f} GB/s")
    resolved = resolve_model(args.model)
    tokenizer = load_tokenizer(resolved)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)["input_ids"]
    print(f"model {resolved.spec}, prompt {prompt.shape[1]} tokens, {args.new_tokens} new tokens\n")
    print(f"{'dtype':6} {'batch':>5} {'cache':8} {'ms/step':>8} {'tok/s':>8} {'floor ms':>8} "
          f"{'x floor':>7} {'vs dynamic':>10}")
    for dtype in args.dtypes.split(","):
        model = load_causal_lm(resolved, dtype=dtype, device="cpu")
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        floor_ms = weight_bytes / (gb_s * 1e9) * 1e3  # one read of the weights per step
        for batch in map(int, args.batches.split(",")):
            ids = prompt.repeat(batch, 1)
            dynamic_ms = None
            for cache in args.caches.split(","):
                ms = decode(model, ids, args.new_tokens, cache) / args.new_tokens * 1e3
                dynamic_ms = ms if cache == "dynamic" else dynamic_ms
                vs = f"{dynamic_ms / ms:.2f}x" if dynamic_ms else "-"
                print(f"{dtype:6} {batch:5d} {cache:8} {ms:8.1f} {batch / ms * 1e3:8.1f} {floor_ms:8.1f} "
                      f"{ms / floor_ms:7.1f} {vs:>10}", flush=True)
        if args.profile and dtype == "bf16":
            from torch.profiler import ProfilerActivity, profile

            ids = prompt.repeat(16, 1)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                decode(model, ids, 16, "dynamic")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        del model


if __name__ == "__main__":
    main()
