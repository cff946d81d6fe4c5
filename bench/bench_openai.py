"""Throughput of the openai backend against a local llama.cpp server: 1, 4 and 8 requests in flight.

The server serves the embedded GGUF file on 127.0.0.1. For each level a fresh server is started
with as many parallel slots as requests in flight where the server has slots: llama.cpp's own
``llama-server`` (``--llama-server PATH``: ``--parallel N``, continuous batching). The default,
``python -m llama_cpp.server`` from llama-cpp-python, has no slots: it answers one request at a
time behind a global lock, so there the ratio measures only what the client's concurrency hides
(request overhead, prompt processing overlapping the next request's transfer). Prints generated
tokens per second per level, the ratio 8 vs 1 (goal >= 2x) and the machine's load average.

    python bench/bench_openai.py [--requests 16] [--max-new-tokens 64] [--llama-server PATH] [--gguf FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.backends.openai_server import LOOPBACK, SERVED_NAME, LlamaServer, free_port, wait_until_ok  # noqa: E402

from seapo.backends import GenerationRequest, make_backend  # noqa: E402
from seapo.models.resolve import embedded_gguf_path  # noqa: E402

QUESTIONS = ["Explain why the sky is blue.", "Write a short story about a lighthouse keeper.",
             "List five uses of a paperclip and explain each.", "Describe how a bicycle works.",
             "What makes a good cup of tea?", "Explain photosynthesis to a child.",
             "Describe the water cycle step by step.", "Why do cats purr?"]


class NativeServer(LlamaServer):
    """llama.cpp's ``llama-server`` with ``slots`` parallel slots (each with n_ctx of context)."""

    def __init__(self, binary: str, gguf: Path, slots: int, n_ctx: int, n_threads: int) -> None:
        super().__init__(gguf, n_ctx=n_ctx, n_threads=n_threads)
        self.binary, self.slots = binary, slots

    def start(self, timeout: float = 120.0) -> NativeServer:
        self.proc = subprocess.Popen(
            [self.binary, "-m", str(self.gguf), "--alias", SERVED_NAME, "--host", LOOPBACK, "--port", str(self.port),
             "--parallel", str(self.slots), "-c", str(self.n_ctx * self.slots), "-t", str(self.n_threads),
             "--cont-batching"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_until_ok(f"http://{LOOPBACK}:{self.port}/health", self.proc, timeout, "llama-server"):
            return self
        self.stop()
        raise RuntimeError("llama-server did not become healthy")


def versions() -> str:
    import importlib.metadata as md

    found = []
    for pkg in ("seapo", "openai", "llama-cpp-python"):
        try:
            found.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            found.append(f"{pkg} (not installed)")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--levels", default="1,4,8", help="requests in flight")
    parser.add_argument("--n-ctx", type=int, default=1024, help="context per slot")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--llama-server", default=None, help="path of llama.cpp's llama-server binary (slots)")
    parser.add_argument("--gguf", default=None, help="serve this GGUF file instead of the embedded one (e.g. its "
                        "weights rewritten in BF16 by bench/gguf_rewrite.py)")
    args = parser.parse_args()

    gguf = Path(args.gguf) if args.gguf else embedded_gguf_path()
    levels = [int(x) for x in args.levels.split(",")]
    requests = [GenerationRequest(messages=[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
                                  max_new_tokens=args.max_new_tokens, temperature=0.7, seed=i)
                for i in range(args.requests)]
    print(f"{versions()}; {os.cpu_count()} CPUs; load average at start {os.getloadavg()}")
    rates: dict[int, float] = {}
    shared = None
    if args.llama_server is None:
        shared = LlamaServer(gguf, port=free_port(), n_ctx=args.n_ctx, n_threads=args.threads).start()
    try:
        for level in levels:
            server = shared or NativeServer(args.llama_server, gguf, level, args.n_ctx, args.threads).start()
            try:
                backend = make_backend({"name": "openai", "model": SERVED_NAME, "base_url": server.base_url,
                                        "max_in_flight": level, "max_retries": 0})
                backend.generate(requests[:1])  # warm-up (model pages, first prompt)
                before = backend.usage["completion_tokens"]
                started = time.perf_counter()
                out = backend.generate(requests)
                elapsed = time.perf_counter() - started
                failed = [g.error for g in out if not g.ok]
                if failed:
                    raise SystemExit(f"{len(failed)} requests failed: {failed[0]}")
                tokens = backend.usage["completion_tokens"] - before
                rates[level] = tokens / elapsed
                print(f"{level:>2} in flight: {tokens} tokens in {elapsed:.2f} s = {rates[level]:.1f} tokens/s"
                      f"  (load {os.getloadavg()[0]:.2f})")
            finally:
                if shared is None:
                    server.stop()
    finally:
        if shared is not None:
            shared.stop()
    if 1 in rates and 8 in rates:
        ratio = rates[8] / rates[1]
        print(f"8 vs 1 in flight: {ratio:.2f}x (goal >= 2x: {'met' if ratio >= 2 else 'NOT met'}); "
              f"server: {'llama-server --parallel' if args.llama_server else 'llama_cpp.server (serial)'}")
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
