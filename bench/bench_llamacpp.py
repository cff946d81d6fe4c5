"""Decoding speed and greedy agreement of the llamacpp backend against the transformers backend, side by side.

    python bench/bench_llamacpp.py [--new-tokens 128] [--batch 16] [--agree 20] [--agree-tokens 32]
                                   [--gguf FILE ...] [--no-fp32-speed]

In one process, on the embedded model (SmolLM2-135M-Instruct): the transformers backend as it is
today (bf16 and fp32, ``model.generate``: the peer) and the llamacpp backend (the same weights as
the Q4_1 GGUF file), each at batch 1 and at ``--batch`` prompts x ``--new-tokens`` new tokens.
Reported: generated tokens per second, milliseconds per decoding step (wall time / the longest
completion's tokens: one step advances every row), and the ratios to transformers bf16. Then greedy
agreement on ``--agree`` chat prompts: exact-match rate of the completions and mean common prefix
in tokens, llamacpp vs transformers fp32 and, for scale, transformers bf16 vs fp32. ``--gguf`` adds
a llamacpp side per further GGUF file of the same model (e.g. the embedded weights rewritten in
BF16 by ``bench/gguf_rewrite.py``). Wall-clock figures move with the machine's
load, which is printed with them.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.metadata import version

from seapo.backends import GenerationBackend, GenerationRequest, make_backend

TOPICS = ("cat dog bird fish horse mouse lion tiger bear wolf fox owl frog snake goat cow whale crab bee ant "
          "deer duck seal crow").split()
QUESTIONS = ["What is the capital of France?", "Write a haiku about the sea.", "What is 12 times 3?",
             "Name three primary colors.", "How do I boil an egg?", "Translate 'good morning' into Spanish.",
             "Why is the sky blue?", "Give me a tip for learning to code.", "What is photosynthesis?",
             "Who wrote Romeo and Juliet?", "What is the boiling point of water?", "Describe a rainbow.",
             "How many legs does a spider have?", "What is a prime number?", "Suggest a name for a pet fish.",
             "What does a doctor do?", "Explain gravity to a child.", "What is the largest ocean?",
             "List two fruits that are red.", "How do plants drink water?"]


def story_requests(n: int, new_tokens: int) -> list[GenerationRequest]:
    return [GenerationRequest(messages=[{"role": "user", "content": f"Write a long story about a {TOPICS[i % 24]}."}],
                              max_new_tokens=new_tokens) for i in range(n)]


def speed(backend: GenerationBackend, batch: int, new_tokens: int) -> dict[str, float]:
    requests = story_requests(batch, new_tokens)
    backend.generate(requests[:1] if batch == 1 else requests[:2])  # warm up (weights packed, caches made)
    start = time.perf_counter()
    out = backend.generate(requests)
    elapsed = time.perf_counter() - start
    tokens = sum(g.num_tokens for g in out)
    steps = max(g.num_tokens for g in out)
    return {"tok_s": tokens / elapsed, "ms_step": 1000 * elapsed / steps, "tokens": tokens, "s": elapsed}


def token_ids(backend: GenerationBackend, texts: list[str]) -> list[list[int]]:
    return [backend.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]  # type: ignore[attr-defined]


def agreement(a: list[list[int]], b: list[list[int]]) -> tuple[float, float]:
    exact = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    prefix = [next((k for k, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
              for x, y in zip(a, b, strict=True)]
    return exact, sum(prefix) / len(prefix)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--agree", type=int, default=20, help="chat prompts for the greedy agreement")
    parser.add_argument("--agree-tokens", type=int, default=32)
    parser.add_argument("--gguf", action="append", default=[], help="another GGUF file of the embedded model")
    parser.add_argument("--no-fp32-speed", action="store_true", help="time transformers fp32 not (agreement only)")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.processor() or platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} cores  load {load_average()}")
    import llama_cpp

    print(f"torch {version('torch')}  transformers {version('transformers')}  "
          f"llama-cpp-python {llama_cpp.__version__} ({os.path.dirname(llama_cpp.__file__)})")
    print(llama_cpp.llama_print_system_info().decode().strip())
    backends = {"transformers bf16": make_backend(name="transformers", model="embedded", dtype="bf16",
                                                  batch_size=args.batch),
                "transformers fp32": make_backend(name="transformers", model="embedded", dtype="fp32",
                                                  batch_size=args.batch),
                "llamacpp Q4_1": make_backend(name="llamacpp", model="embedded", batch_size=args.batch)}
    for path in args.gguf:
        backends[f"llamacpp {os.path.basename(path)}"] = make_backend(name="llamacpp", model=path,
                                                                      batch_size=args.batch)
    figures: dict[str, dict[int, dict[str, float]]] = {}
    for name, backend in backends.items():
        backend.load()
        if name == "transformers fp32" and args.no_fp32_speed:
            continue
        figures[name] = {b: speed(backend, b, args.new_tokens) for b in (1, args.batch)}
        for b, f in figures[name].items():
            print(f"{name:18s} batch {b:3d}: {f['tok_s']:7.1f} tokens/s  {f['ms_step']:6.1f} ms/step  "
                  f"({f['tokens']} tokens in {f['s']:.1f} s)  load {load_average()}")
    peer = figures["transformers bf16"]
    for name in [n for n in figures if n != "transformers bf16"]:
        ratios = "  ".join(f"batch {b}: {figures[name][b]['tok_s'] / peer[b]['tok_s']:.2f}x" for b in peer)
        print(f"{name} / transformers bf16 tokens/s: {ratios}")
    requests = [GenerationRequest(messages=[{"role": "user", "content": q}], max_new_tokens=args.agree_tokens)
                for q in (QUESTIONS * (1 + args.agree // len(QUESTIONS)))[:args.agree]]
    ids = {name: token_ids(backends["transformers fp32"], [g.text for g in backend.generate(requests)])
           for name, backend in backends.items()}
    for name in [n for n in backends if n != "transformers fp32"]:
        exact, prefix = agreement(ids[name], ids["transformers fp32"])
        print(f"greedy agreement {name} vs transformers fp32 on {len(requests)} prompts x {args.agree_tokens} "
              f"tokens: exact {100 * exact:.0f} %, mean common prefix {prefix:.1f} tokens")
    for backend in backends.values():
        backend.close()


if __name__ == "__main__":
    main()
