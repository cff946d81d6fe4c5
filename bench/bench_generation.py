"""Evaluation-shaped generation: seapo's greedy loop against ``model.generate``, side by side, one process.

    python bench/bench_generation.py [--tasks 6] [--per-task 3] [--new-tokens 512] [--batch 16] [--dtype bf16]
                                     [--sides seapo,peer]

BBH's 3-shot chain-of-thought prompts from the shared data (``eval/bbh``: the first ``--per-task``
questions of the first ``--tasks`` tasks, "Q: ... A: Let's think step by step.", stop at a blank line,
greedy, ``--new-tokens`` at most): long prompts that share their exemplars, and completions of very
different lengths -- where the evaluation's generation time goes (docs/benchmarks.md). The peer is
the transformers backend's code path before its own loop: ``model.generate`` with stop strings on
length-sorted, left-padded batches of ``--batch`` (here re-stated in ``peer_generate``). Both run the
same loaded model and the same requests; printed: wall time, generated tokens, tokens/s, resident memory
(at the start, peak and end of each side), the ratio, how many completions are identical, and how many
of each side's equal an fp32 run's (skip with ``--no-reference``). ``--sides seapo`` runs seapo's loop
alone: its memory over many prompts, without the peer's allocations in the same process.
Wall-clock figures move with the machine's load, printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib.metadata import version

from _shared import SHARED, ResidentMemory
from seapo.backends import GenerationRequest, make_backend
from seapo.backends.transformers_backend import cut_at_stop


def bbh_requests(tasks: int, per_task: int, new_tokens: int) -> list[GenerationRequest]:
    folder = SHARED / "eval" / "bbh"
    out = []
    for path in sorted(folder.glob("*.json"))[:tasks]:
        exemplars = (folder / "cot-prompts" / f"{path.stem}.txt").read_text(encoding="utf-8").split("-----\n", 1)[-1]
        for example in json.loads(path.read_text(encoding="utf-8"))["examples"][:per_task]:
            prompt = f"{exemplars.strip()}\n\nQ: {example['input']}\nA: Let's think step by step."
            out.append(GenerationRequest(prompt=prompt, max_new_tokens=new_tokens, stop=("\n\n",)))
    return out


def peer_generate(backend, requests: list[GenerationRequest], batch: int) -> list[tuple[str, int]]:
    """The backend's former greedy path: ``model.generate`` per length-sorted batch."""
    import torch

    encoded = [backend.encode(r) for r in requests]
    order = sorted(range(len(requests)), key=lambda i: len(encoded[i]), reverse=True)
    out: list[tuple[str, int]] = [("", 0)] * len(requests)
    for start in range(0, len(order), batch):
        members = order[start:start + batch]
        ids, mask, width = backend._left_padded([encoded[i] for i in members])
        request = requests[members[0]]
        with torch.inference_mode():
            seqs = backend.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=request.max_new_tokens, do_sample=False,
                temperature=None, top_p=None, top_k=None, eos_token_id=backend._eos,
                pad_token_id=backend.tokenizer.pad_token_id, stop_strings=list(request.stop),
                tokenizer=backend.tokenizer)
        for row, i in enumerate(members):
            new = seqs[row, width:].tolist()
            ended = next((k for k, t in enumerate(new) if t in backend._eos), None)
            tokens = new if ended is None else new[:ended]
            text = cut_at_stop(backend.tokenizer.decode(tokens, skip_special_tokens=True), request.stop)[0]
            out[i] = (text, len(tokens))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--per-task", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--sides", default="seapo,peer", help="which sides to run: seapo, peer or both")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the fp32 run that both sides' completions are compared with")
    args = parser.parse_args()
    requests = bbh_requests(args.tasks, args.per_task, args.new_tokens)
    backend = make_backend(model="embedded", dtype=args.dtype, batch_size=args.batch)
    backend.load()
    lengths = [len(backend.encode(r)) for r in requests]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; torch {version('torch')}, "
          f"transformers {version('transformers')}; load average before {os.getloadavg()[0]:.2f}")
    print(f"{len(requests)} BBH prompts of {min(lengths)}-{max(lengths)} tokens, at most {args.new_tokens} new, "
          f"batch {args.batch}, {args.dtype}")
    sides = set(args.sides.split(","))
    t = time.perf_counter()
    with ResidentMemory() as ours_rss:
        ours = backend.generate(requests)
    ours_s = time.perf_counter() - t
    ours_tokens = sum(g.num_tokens for g in ours)
    print(f"seapo greedy loop:     {ours_s:7.1f} s  {ours_tokens:6d} tokens  {ours_tokens / ours_s:6.1f} tok/s  "
          f"{ours_rss}")
    if "peer" not in sides:
        return
    t = time.perf_counter()
    with ResidentMemory() as theirs_rss:
        theirs = peer_generate(backend, requests, args.batch)
    theirs_s = time.perf_counter() - t
    theirs_tokens = sum(n for _, n in theirs)
    same = sum(g.text == text for g, (text, _) in zip(ours, theirs, strict=True))
    print(f"model.generate (peer): {theirs_s:7.1f} s  {theirs_tokens:6d} tokens  "
          f"{theirs_tokens / theirs_s:6.1f} tok/s  {theirs_rss}")
    print(f"ratio (wall time, peer / seapo): {theirs_s / ours_s:.2f}x; identical completions {same}/{len(requests)}; "
          f"load average after {os.getloadavg()[0]:.2f}")
    if not args.no_reference and args.dtype != "fp32":
        # In fp32 seapo's loop picks model.generate's tokens (tests/backends/test_greedy_loop.py); in bf16 any
        # change of batching can flip a near-tie. How far each bf16 side is from fp32 shows which is closer.
        backend.close()
        reference = make_backend(model="embedded", dtype="fp32", batch_size=args.batch).generate(requests)
        for name, texts in (("model.generate", [t for t, _ in theirs]), ("seapo loop", [g.text for g in ours])):
            exact = sum(a == r.text for a, r in zip(texts, reference, strict=True))
            print(f"{name} {args.dtype} vs fp32: identical {exact}/{len(requests)}")


if __name__ == "__main__":
    main()
