"""GPU bench: injection and training throughput on a randomly initialised Qwen2.5-1.5B-shaped model, side by side.

No download: the model is built in code from Qwen2.5-1.5B's architecture (28 layers, hidden 1536, MLP 8960,
12 query / 2 key-value heads, vocabulary 151,936, tied embeddings) with random weights; the tokenizer is
the embedded SmolLM2-135M-Instruct's (byte-level BPE, 49,152 tokens, ChatML template), read from
``--tokenizer`` (scripts/gpu_wheels.sh copies it beside the wheels) or from the installed embedded model.
A random model rarely emits EOS, so nearly every completion runs to ``--new-tokens``: the figures are
decoding speed, not answers. It measures, each side in a fresh process:

* **injection** (the LLM injector's requests: the paper's injection prompt on synthetic GSM8K-style
  solutions, greedy): generated tokens/s of the ``transformers`` backend batched (``--batch``) against
  one request at a time, and of the ``vllm`` backend where vLLM is installed;
* **training** on the same SeaPO-shaped pairs (a negative is its positive with one step changed, so a
  pair shares a long prefix, as SeaPO's do): ``seapo train --algo dpo`` (seapo.train.train, the API the
  CLI runs) against TRL's ``DPOTrainer`` with its defaults (LoRA r=8 on all linear layers, the same
  learning rate, effective batch, max length and epochs on both), in pairs/s, tokens/s and the fraction
  of the GPU's dense bf16 peak (``--peak-tflops``, H200: 989) that the model FLOPs per second reach.

Model FLOPs are counted as the work of every row computed whole (what TRL computes): per token,
forward = 2 x (matmul parameters, LM head included) + 2 x layers x context x hidden (causal attention);
a LoRA step is 2 forwards (frozen weights get no weight gradient), full fine-tuning 3; the reference
model adds 1 forward per token. seapo's shared-prefix forward computes less than that count, so its
fraction is an effective one (the same work done in less time), marked as such.

    python bench/bench_gpu.py [--smoke] [--peak-tflops 989] [--prompts 64] [--new-tokens 256] [--batch 32]
                              [--pairs 256] [--max-length 1024] [--epochs 1] [--skip-inject] [--skip-train]
                              [--skip-vllm] [--json OUT.json]

``--smoke``: tiny dimensions (2 layers, hidden 64) and a handful of prompts and pairs, on CPU when no GPU
is visible: checks the script end to end in about a minute; its figures mean nothing.

The GPU machine may have only torch, transformers, peft and accelerate: the script first says which
of the packages it needs are missing; scripts/gpu_wheels.sh downloads them as wheels (docs/gpu.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEELS_TOKENIZER = REPO / ".whl" / "smollm2-tokenizer"

REQUIRED = ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "pydantic", "typer", "rich", "yaml")
"""Modules the bench imports (seapo's own needs, for the backend and the trainer; yaml is PyYAML)."""
OPTIONAL = ("vllm",)

QWEN25_15B = {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
              "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
              "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True}
"""Qwen2.5-1.5B(-Instruct)'s config.json, the fields that shape the compute."""
SMOKE = {**QWEN25_15B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "max_position_embeddings": 2048, "vocab_size": 49152}
"""Smoke dims: the tokenizer's own vocabulary, so the LM head does not dominate a CPU run."""


# ---------------------------------------------------------------------------------------------- environment
def check_environment(need_gpu: bool) -> dict[str, str | None]:
    """The version of every module the bench needs (None: missing); prints them and what to do."""
    found: dict[str, str | None] = {}
    for name in REQUIRED + OPTIONAL:
        try:
            module = importlib.import_module(name)
            found[name] = str(getattr(module, "__version__", "?"))
        except Exception as exc:  # noqa: BLE001 - an installed but broken package is as good as missing
            found[name] = None
            if name in REQUIRED:
                print(f"  {name}: cannot import ({type(exc).__name__}: {exc})", flush=True)
    print("packages: " + ", ".join(f"{k} {v or 'MISSING'}" for k, v in found.items()), flush=True)
    missing = [k for k in REQUIRED if found[k] is None]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)}. Download their wheels here with scripts/gpu_wheels.sh, "
                         "carry .whl and install them first (docs/gpu.md has the command).")
    import torch

    gpu = torch.cuda.is_available()
    if gpu:
        print(f"GPU: {torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}, "
              f"torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    elif need_gpu:
        raise SystemExit("no CUDA GPU is visible (torch.cuda.is_available() is False); --smoke runs on CPU")
    else:
        print("no GPU: smoke mode on CPU", flush=True)
    return found


def tokenizer_folder(explicit: str | None) -> str:
    """Where the SmolLM2 tokenizer files are: --tokenizer, the copy beside the wheels, or the embedded model."""
    if explicit:
        return explicit
    if (WHEELS_TOKENIZER / "tokenizer.json").is_file():
        return str(WHEELS_TOKENIZER)
    from seapo.models import embedded_model_dir

    return str(embedded_model_dir())


def build_model(folder: Path, dims: dict, tokenizer_dir: str, seed: int = 0) -> None:
    """A random-init Qwen2 model of ``dims`` saved (bf16) with the tokenizer into ``folder``."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = Qwen2Config(**dims, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):  # initialising 1.5B parameters on the GPU takes seconds, on CPU a minute
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    if device == "cuda":  # the sides run in other processes: leave them the whole GPU
        torch.cuda.empty_cache()


def matmul_params(dims: dict) -> int:
    """Parameters that take part in a matmul per token: every layer's projections and the LM head."""
    d, f, layers = dims["hidden_size"], dims["intermediate_size"], dims["num_hidden_layers"]
    kv = d * dims["num_key_value_heads"] // dims["num_attention_heads"]
    per_layer = d * d + 2 * d * kv + d * d + 3 * d * f  # q, k, v, o; gate, up, down
    return layers * per_layer + dims["vocab_size"] * d


def forward_flops(dims: dict, seq_len: int) -> float:
    """Forward FLOPs of one sequence of ``seq_len`` tokens (matmuls + causal attention)."""
    attention = 2 * dims["num_hidden_layers"] * seq_len * dims["hidden_size"]  # QK^T and AV, causal: half of 4Lsd
    return seq_len * (2 * matmul_params(dims) + attention)


# ---------------------------------------------------------------------------------------------- inputs
def synthetic_solution(i: int) -> tuple[str, str]:
    """A GSM8K-style question and worked solution (deterministic in ``i``)."""
    names = ["Ava", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana"]
    a, b, c = 3 + i % 17, 5 + (i * 7) % 23, 2 + (i * 3) % 9
    name = names[i % len(names)]
    question = (f"{name} buys {a} boxes of pencils with {b} pencils in each box, gives away {c} pencils to each "
                f"of {a} friends, and then buys {b} more pencils. How many pencils does {name} have now?")
    steps = [f"{name} starts with {a} boxes x {b} pencils = {a * b} pencils.",
             f"Giving {c} pencils to each of {a} friends uses {a} x {c} = {a * c} pencils.",
             f"That leaves {a * b} - {a * c} = {a * b - a * c} pencils.",
             f"Buying {b} more gives {a * b - a * c} + {b} = {a * b - a * c + b} pencils."]
    steps += [f"Check: {a * b} - {a * c} + {b} = {a * b - a * c + b}, which matches step {k}." for k in range(1, 4)]
    return question, "\n".join(steps) + f"\n#### {a * b - a * c + b}"


def injection_requests(n: int, new_tokens: int) -> list:
    from seapo.backends import GenerationRequest
    from seapo.inject.error_types import ErrorType
    from seapo.inject.prompts import build_injection_prompt

    types = list(ErrorType)
    out = []
    for i in range(n):
        question, solution = synthetic_solution(i)
        prompt = build_injection_prompt(question, solution, types[i % len(types)])
        out.append(GenerationRequest(messages=[{"role": "user", "content": prompt}], max_new_tokens=new_tokens))
    return out


def synthetic_pairs(n: int) -> list[dict]:
    """SeaPO-shaped pairs: the rejected side is the chosen one with its third step miscalculated."""
    rows = []
    for i in range(n):
        question, chosen = synthetic_solution(i)
        lines = chosen.split("\n")
        lines[2] = lines[2].rsplit("=", 1)[0] + f"= {int(lines[2].rsplit('=', 1)[1].split()[0]) + 10} pencils."
        rows.append({"record_id": f"bench-{i}", "error_type": "correctness",
                     "prompt": [{"role": "user", "content": question}],
                     "chosen": {"role": "assistant", "content": chosen},
                     "rejected": {"role": "assistant", "content": "\n".join(lines)}})
    return rows


# ---------------------------------------------------------------------------------------------- sides
def side_inject_transformers(args, model: str) -> dict:
    import torch

    from seapo.backends import make_backend

    requests = injection_requests(args.prompts, args.new_tokens)
    dtype = "bf16" if torch.cuda.is_available() else "fp32"
    backend = make_backend(name="transformers", model=model, dtype=dtype, batch_size=args.batch)
    out = {}
    with backend:
        backend.generate(requests[:min(2, len(requests))])  # warm-up: CUDA kernels, allocator
        out["batched"] = timed_generation(backend, requests)
        # The same loaded weights, one request per call (so a batch of one).
        out["single"] = timed_generation(backend, requests[:args.single_prompts], one_at_a_time=True)
    return out


def side_inject_vllm(args, model: str) -> dict:
    from seapo.backends import make_backend

    requests = injection_requests(args.prompts, args.new_tokens)
    backend = make_backend(name="vllm", model=model, dtype="bf16", batch_size=max(args.batch, 256),
                           max_model_len=4096, gpu_memory_utilization=0.85)
    t0 = time.perf_counter()
    with backend:
        start = time.perf_counter() - t0
        backend.generate(requests[:2])
        result = timed_generation(backend, requests)
    return {"vllm": {**result, "engine_start_s": start}}


def timed_generation(backend, requests, one_at_a_time: bool = False) -> dict:
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    outs = [backend.generate([r])[0] for r in requests] if one_at_a_time else backend.generate(requests)
    sync()
    wall = time.perf_counter() - t0
    failed = [g.error for g in outs if not g.ok]
    if failed:
        raise SystemExit(f"{len(failed)} requests failed, first: {failed[0]}")
    tokens = sum(g.num_tokens for g in outs)
    return {"requests": len(requests), "tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall}


def train_settings(args) -> dict:
    return {"epochs": args.epochs, "max_length": args.max_length, "batch": args.train_batch, "lr": 5e-6}


def side_train_seapo(args, model: str, pairs_file: Path, out: str) -> dict:
    from seapo.train.config import TrainConfig
    from seapo.train.trainer import train

    s = train_settings(args)
    cfg = TrainConfig(model=model, algo="dpo", output_dir=out, epochs=s["epochs"], max_length=s["max_length"],
                      batch_size=s["batch"], learning_rate=s["lr"], heldout_fraction=0.0, merge=False, seed=42,
                      logging_steps=1)
    t0 = time.perf_counter()
    result = train(pairs_file, cfg)
    wall = time.perf_counter() - t0
    from seapo.io import read_jsonl

    log = read_jsonl(result.log_path)
    saved = [r["shared_prefix/saved_fraction"] for r in log if "shared_prefix/saved_fraction" in r]
    return {"wall_s": wall, "losses": [r["loss"] for r in log if "loss" in r],
            "settings": {k: v for k, v in result.settings.items() if isinstance(v, (int, float, str, bool))},
            "shared_prefix_saved_fraction": saved[-1] if saved else None, **peak_memory()}


def side_train_trl(args, model: str, pairs_file: Path, out: str) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from seapo.io import read_jsonl
    from seapo.models import load_tokenizer

    s = train_settings(args)
    pairs = read_jsonl(pairs_file)
    data = Dataset.from_list([{"prompt": p["prompt"], "chosen": [p["chosen"]], "rejected": [p["rejected"]]}
                              for p in pairs])
    # TRL's defaults, but for what both sides must share: LR, schedule, epochs, max length, effective batch
    # (TRL's default micro-batch of 8, accumulated up to it), LoRA.
    micro = min(8, s["batch"])
    args_ = DPOConfig(output_dir=out, per_device_train_batch_size=micro,
                      gradient_accumulation_steps=max(1, s["batch"] // micro), max_length=s["max_length"],
                      learning_rate=s["lr"], lr_scheduler_type="cosine", num_train_epochs=s["epochs"],
                      logging_steps=1, save_strategy="no", report_to="none", seed=42,
                      use_cpu=not torch.cuda.is_available())
    peft = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    t0 = time.perf_counter()
    trainer = DPOTrainer(model=model, args=args_, train_dataset=data,
                         processing_class=load_tokenizer(model, padding_side="right"), peft_config=peft)
    trainer.train()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
            "settings": {"per_device_train_batch_size": micro, "bf16": bool(args_.bf16),
                         "gradient_checkpointing": bool(args_.gradient_checkpointing)}, **peak_memory()}


def peak_memory() -> dict:
    import resource

    import torch

    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


SIDES = ("inject-transformers", "inject-vllm", "train-seapo", "train-trl")


def child(args) -> None:
    """One side in this fresh process; prints one RESULT line."""
    model, work = args.model_dir, Path(args.work)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        if args.only == "inject-transformers":
            result = side_inject_transformers(args, model)
        elif args.only == "inject-vllm":
            result = side_inject_vllm(args, model)
        elif args.only == "train-seapo":
            result = side_train_seapo(args, model, work / "pairs.jsonl", f"{tmp}/seapo")
        else:
            result = side_train_trl(args, model, work / "pairs.jsonl", f"{tmp}/trl")
    print("RESULT " + json.dumps(result), flush=True)


class SideFailed(SystemExit):
    """One side's process failed; the training loop records it and runs the other side."""


def run_side(side: str, argv: list[str], work: Path, model_dir: Path) -> dict:
    cmd = [sys.executable, __file__, *argv, "--only", side, "--work", str(work), "--model-dir", str(model_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        # The head of stderr names where a failure started, the tail what it was.
        err = proc.stderr if len(proc.stderr) <= 6000 else proc.stderr[:2500] + "\n[...]\n" + proc.stderr[-3500:]
        raise SideFailed(f"side {side} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{err}")
    return json.loads(lines[-1][len("RESULT "):])


# ---------------------------------------------------------------------------------------------- main
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny dims and inputs; runs on CPU (checks the script only)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak in TFLOP/s "
                   "(H200/H100 SXM: 989)")
    p.add_argument("--prompts", type=int, default=None, help="injection requests (default 64; smoke 4)")
    p.add_argument("--single-prompts", type=int, default=None, help="of them, run one at a time (default 8; smoke 2)")
    p.add_argument("--new-tokens", type=int, default=None, help="max new tokens per request (default 256; smoke 8)")
    p.add_argument("--batch", type=int, default=32, help="transformers backend batch size")
    p.add_argument("--pairs", type=int, default=None, help="training pairs (default 256; smoke 8)")
    p.add_argument("--max-length", type=int, default=None, help="training max length (default 1024; smoke 256)")
    p.add_argument("--train-batch", type=int, default=None, help="effective training batch (default 16; smoke 4)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--tokenizer", default=None, help="folder with the SmolLM2 tokenizer files")
    p.add_argument("--skip-inject", action="store_true")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-vllm", action="store_true")
    p.add_argument("--json", default=None, help="also write every figure to this JSON file")
    p.add_argument("--only", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    defaults = {"prompts": (64, 4), "single_prompts": (8, 2), "new_tokens": (256, 8), "pairs": (256, 4),
                "max_length": (1024, 192), "train_batch": (16, 2)}
    for name, (full, smoke) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, smoke if args.smoke else full)
    if args.smoke:
        args.batch = min(args.batch, 4)
    return args


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.only:
        child(args)
        return {}
    sys.path.insert(0, str(REPO / "src"))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    found = check_environment(need_gpu=not args.smoke)
    import torch

    dims = SMOKE if args.smoke else QWEN25_15B
    gpu = torch.cuda.is_available()
    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "smoke": args.smoke,
                    "device": torch.cuda.get_device_name(0) if gpu else "cpu", "packages": found,
                    "load_average_start": os.getloadavg()[0], "dims": dims,
                    "model_parameters_matmul": matmul_params(dims), "peak_tflops": args.peak_tflops}
    print(f"model: Qwen2.5-1.5B architecture{' (smoke: tiny dims)' if args.smoke else ''}, random init, "
          f"{matmul_params(dims) / 1e9:.3f} B matmul parameters; tokenizer SmolLM2 (byte-level BPE, 49,152 tokens); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    model_dir = work / "model"
    t0 = time.perf_counter()
    build_model(model_dir, dims, tokenizer_folder(args.tokenizer))
    print(f"built and saved the model in {time.perf_counter() - t0:.1f} s", flush=True)
    passthrough = [a for a in argv if a != "--json"]
    if args.json:
        k = passthrough.index(args.json)
        del passthrough[k]

    if not args.skip_inject:
        r = run_side("inject-transformers", passthrough, work, model_dir)
        report["inject"] = r
        b, s = r["batched"], r["single"]
        print(f"injection, transformers backend, {args.new_tokens} new tokens per request, greedy:\n"
              f"  batched (batch {args.batch}, {b['requests']} requests): {b['tokens_per_s']:.1f} tokens/s "
              f"({b['tokens']} tokens in {b['wall_s']:.1f} s)\n"
              f"  one at a time ({s['requests']} requests): {s['tokens_per_s']:.1f} tokens/s "
              f"({s['tokens']} tokens in {s['wall_s']:.1f} s)\n"
              f"  batched / one at a time: {b['tokens_per_s'] / s['tokens_per_s']:.2f}x", flush=True)
        if args.skip_vllm or found.get("vllm") is None or not gpu:
            why = "skipped (--skip-vllm)" if args.skip_vllm else "vLLM not installed" if found.get(
                "vllm") is None else "no GPU"
            print(f"  vllm backend: {why}", flush=True)
        else:
            v = run_side("inject-vllm", passthrough, work, model_dir)["vllm"]
            report["inject"]["vllm"] = v
            print(f"  vllm backend ({v['requests']} requests, engine start {v['engine_start_s']:.0f} s): "
                  f"{v['tokens_per_s']:.1f} tokens/s; vllm / transformers batched: "
                  f"{v['tokens_per_s'] / b['tokens_per_s']:.2f}x", flush=True)

    failed_sides: list[str] = []
    if not args.skip_train:
        from seapo.io import write_jsonl
        from seapo.models import load_tokenizer
        from seapo.train.data import encode_response

        pairs = synthetic_pairs(args.pairs)
        write_jsonl(work / "pairs.jsonl", pairs)
        tokenizer = load_tokenizer(str(model_dir))
        lengths = [len(encode_response(tokenizer, p["prompt"], p[side]["content"], args.max_length)[0])
                   for p in pairs for side in ("chosen", "rejected")]
        tokens = sum(lengths) * args.epochs
        policy = 2  # LoRA: forward + activation gradients (frozen weights get none)
        flops = sum(forward_flops(dims, n) for n in lengths) * args.epochs * (policy + 1)  # + reference forward
        report["train"] = {"pairs": args.pairs, "tokens": tokens, "model_flops": flops}
        print(f"training, DPO + LoRA r=8, {args.pairs} pairs x {args.epochs:g} epochs, {tokens:.0f} tokens "
              f"(prompt+chosen, prompt+rejected), max length {args.max_length}, effective batch {args.train_batch}; "
              f"model FLOPs {flops / 1e12:.2f} TFLOP (every row whole, policy 2 + reference 1 forward per token)",
              flush=True)
        for side, label in (("train-seapo", "seapo train --algo dpo"), ("train-trl", "TRL DPOTrainer defaults")):
            try:
                r = run_side(side, passthrough, work, model_dir)
            except SideFailed as failed:  # the other side's figures are still worth having
                print(f"  {label}: FAILED\n{failed}", flush=True)
                report["train"][side] = {"error": str(failed)[-4000:]}
                continue
            report["train"][side] = r
            tflops = flops / r["wall_s"] / 1e12
            share = tflops / args.peak_tflops
            saved = r.get("shared_prefix_saved_fraction")
            print(f"  {label}: {r['wall_s']:.1f} s, {args.pairs * args.epochs / r['wall_s']:.2f} pairs/s, "
                  f"{tokens / r['wall_s']:.0f} tokens/s, {tflops:.1f} TFLOP/s = {share:.1%} of the "
                  f"{args.peak_tflops:g} TFLOP/s bf16 peak"
                  + (" (effective: the shared prefix was not recomputed for "
                     f"{saved:.1%} of tokens)" if saved else "")
                  + (f", peak GPU memory {r['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in r else ""), flush=True)
            r["tflops"], r["peak_fraction"] = tflops, share
        a, b = report["train"]["train-trl"], report["train"]["train-seapo"]
        if "wall_s" in a and "wall_s" in b:
            print(f"  seapo / TRL: {a['wall_s'] / b['wall_s']:.2f}x (wall time, model load and set-up included)",
                  flush=True)
        failed_sides = [k for k in ("train-seapo", "train-trl") if "error" in report["train"][k]]
    report["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end {os.getloadavg()[0]:.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
    if failed_sides:
        raise SystemExit(f"failed: {', '.join(failed_sides)} (above)")
    return report


if __name__ == "__main__":
    main()
