"""Throughput of ``seapo train`` against TRL's DPOTrainer with its own defaults.

Same model (embedded SmolLM2-135M-Instruct), same 16 real pairs (the first single-turn rows of
dpo_en_demo.json: chosen vs rejected), max length 512, batch 4, LoRA r=8/alpha=16 on all linear
layers, lr 5e-6, cosine, the same epochs. The peer is ``DPOTrainer`` as its defaults configure it
(bf16 autocast over fp32 weights, gradient checkpointing on, reference forward every step,
random order). Both timings cover building the trainer (model load, tokenization, any
precomputation) and training. Prints pairs/s, tokens/s, the ratio and both loss curves.

    .venv/bin/python bench/bench_train.py [--epochs 3] [--pairs 16] [--skip-trl]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEAPO_SHARED_DATA", REPO.parent / "shared" / "data"))


def load_pairs(n: int) -> list[dict]:
    rows = json.loads((SHARED / "preference" / "dpo_en_demo.json").read_text(encoding="utf-8"))
    pairs = []
    for row in rows:
        conv = row["conversations"]
        if len(conv) != 1 or conv[0]["from"] != "human":
            continue
        pairs.append({"record_id": f"r{len(pairs)}", "error_type": "source",
                      "prompt": [{"role": "user", "content": conv[0]["value"]}],
                      "chosen": {"role": "assistant", "content": row["chosen"]["value"]},
                      "rejected": {"role": "assistant", "content": row["rejected"]["value"]}})
        if len(pairs) == n:
            return pairs
    raise SystemExit(f"only {len(pairs)} single-turn pairs in dpo_en_demo.json")


def count_tokens(pairs: list[dict], tokenizer, max_length: int) -> int:
    from seapo.train.heldout import encode_response

    total = 0
    for p in pairs:
        for side in ("chosen", "rejected"):
            ids, _ = encode_response(tokenizer, p["prompt"], p[side]["content"], max_length)
            total += len(ids)
    return total


def run_trl(model_path: str, pairs: list[dict], epochs: float, max_length: int, out: str) -> tuple:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from seapo.models import load_tokenizer

    data = Dataset.from_list([{"prompt": p["prompt"], "chosen": [p["chosen"]], "rejected": [p["rejected"]]}
                              for p in pairs])
    args = DPOConfig(output_dir=out, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                     max_length=max_length, learning_rate=5e-6, lr_scheduler_type="cosine", num_train_epochs=epochs,
                     logging_steps=1, save_strategy="no", report_to="none", seed=42, use_cpu=True)
    peft = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    t0, c0 = time.perf_counter(), time.process_time()
    trainer = DPOTrainer(model=model_path, args=args, train_dataset=data,
                         processing_class=load_tokenizer(model_path, padding_side="right"), peft_config=peft)
    trainer.train()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return elapsed, cpu, losses


def run_seapo(model_path: str, pairs_file: Path, epochs: float, max_length: int, out: str) -> tuple:
    from seapo.io import read_jsonl
    from seapo.train.config import TrainConfig
    from seapo.train.trainer import train

    cfg = TrainConfig(model=model_path, algo="dpo", output_dir=out, epochs=epochs, max_length=max_length,
                      batch_size=4, heldout_fraction=0.0, merge=False, seed=42)  # micro-batch: seapo's choice
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(pairs_file, cfg)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    losses = [r["loss"] for r in read_jsonl(result.log_path) if "loss" in r]
    return elapsed, cpu, losses, result.settings


def _child(args) -> None:
    """One side, in this (fresh) process; prints one JSON line."""
    from seapo.io import write_jsonl
    from seapo.models import embedded_model_dir

    model = str(embedded_model_dir())
    pairs = load_pairs(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only == "seapo":
            pairs_file = Path(tmp) / "pairs.jsonl"
            write_jsonl(pairs_file, pairs)
            wall, cpu, losses, settings = run_seapo(model, pairs_file, args.epochs, args.max_length,
                                                    f"{tmp}/seapo")
        else:
            wall, cpu, losses = run_trl(model, pairs, args.epochs, args.max_length, f"{tmp}/trl")
            settings = {}
    print("RESULT " + json.dumps({"wall": wall, "cpu": cpu, "losses": losses, "settings": settings}), flush=True)


def _run_side(side: str, args) -> dict:
    import subprocess

    cmd = [sys.executable, __file__, "--only", side, "--pairs", str(args.pairs), "--epochs", str(args.epochs),
           "--max-length", str(args.max_length)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--skip-trl", action="store_true", help="only time seapo")
    parser.add_argument("--only", choices=["seapo", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        return _child(args)

    from seapo.models import embedded_model_dir, load_tokenizer

    model = str(embedded_model_dir())
    pairs = load_pairs(args.pairs)
    tokens = count_tokens(pairs, load_tokenizer(model), args.max_length)
    seen_pairs, seen_tokens = args.pairs * args.epochs, tokens * args.epochs
    print(f"model SmolLM2-135M-Instruct (embedded), {args.pairs} pairs x {args.epochs} epochs, "
          f"{tokens} tokens per epoch (prompt+chosen, prompt+rejected), max length {args.max_length}, batch 4; "
          f"each side in a fresh process (same one-time kernel warm-up for both)", flush=True)

    def report(name: str, r: dict) -> None:
        print(f"{name}: {r['wall']:.1f} s  {seen_pairs / r['wall']:.3f} pairs/s  {seen_tokens / r['wall']:.0f} "
              f"tokens/s  ({r['wall'] / seen_pairs:.2f} s per pair; CPU time {r['cpu']:.1f} s)", flush=True)

    trl = None if args.skip_trl else _run_side("trl", args)
    if trl:
        report("TRL DPOTrainer defaults", trl)
    ours = _run_side("seapo", args)
    report("seapo train", ours)
    print(f"  seapo settings: {json.dumps({k: v for k, v in ours['settings'].items() if k != 'reasons'})}")
    if trl is None:
        return
    # CPU time is printed too: on a shared machine wall time also counts other people's work.
    print(f"speed-up seapo / TRL defaults: {trl['wall'] / ours['wall']:.2f}x wall time, "
          f"{trl['cpu'] / ours['cpu']:.2f}x CPU time")
    print("loss per step (batches come in a different order, so compare the trend and the last epoch):")
    print("  seapo:", " ".join(f"{x:.4f}" for x in ours["losses"]))
    print("  TRL:  ", " ".join(f"{x:.4f}" for x in trl["losses"]))
    per_epoch = max(1, len(ours["losses"]) // int(max(1, args.epochs)))
    mean = (lambda xs: sum(xs[-per_epoch:]) / per_epoch)  # noqa: E731
    print(f"  mean loss of the last epoch: seapo {mean(ours['losses']):.4f}, TRL {mean(trl['losses']):.4f}")


if __name__ == "__main__":
    sys.exit(main())
