"""Throughput of ``seapo train`` against TRL's trainers with their own defaults, on SeaPO pairs.

Same model (embedded SmolLM2-135M-Instruct), same real SeaPO pairs -- UltraFeedback
(``source/ultrafeedback/train_1k.jsonl``) best-rated responses with one rules negative each, made
by ``seapo inject`` (rules injector, every error type, mixed strategy, no judge) -- max length
512, batch 4, LoRA r=8/alpha=16 on all linear layers, lr 5e-6, cosine, the same epochs. The peers
are ``DPOTrainer`` / ``KTOTrainer`` as their defaults configure them (bf16 autocast over fp32
weights, gradient checkpointing on, reference forward every step, random order). Every side runs
in a fresh process; its timing covers building the trainer (model load, tokenization, any
precomputation) and training. Prints pairs/s, tokens/s, peak memory (max RSS), the fraction of
tokens the shared-prefix forward did not recompute, the ratios and the loss curves.

    .venv/bin/python bench/bench_train.py [--epochs 3] [--pairs 16] [--kto] [--skip-dpo] [--ablate] [--skip-trl]

``--ablate`` also times ``seapo train --no-shared-prefix`` (what the shared prefix alone brings);
with ``--kto`` twice: with seapo's unshared CPU micro-batch (2 rows) and with the shared run's
micro-batch (4 rows = 2 pairs, the same batches: the packed forward alone). The load average is
printed before and after: the machine may be shared.
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


def load_pairs(n: int, out: Path) -> list[dict]:
    """``n`` SeaPO pairs (pairs.jsonl rows) from UltraFeedback's best-rated responses, one rules
    negative per record (``seapo inject``, strategy mixed, no judge)."""
    from seapo.data.schema import Record
    from seapo.inject.pipeline import InjectConfig, inject
    from seapo.io import read_jsonl

    records = []
    for row in read_jsonl(SHARED / "source" / "ultrafeedback" / "train_1k.jsonl"):
        if row["chosen"].strip() and len(row["chosen"]) <= 1200 and len(row["prompt"]) <= 400:
            records.append(Record(prompt=[{"role": "user", "content": row["prompt"]}], response=row["chosen"],
                                  source={"dataset": "ultrafeedback", "split": "train_1k", "format": "bench",
                                          "line": row.get("source_index", len(records))}))
        if len(records) == 3 * n:  # some records get no verified negative
            break
    result = inject(records, out, InjectConfig(injector="rules", strategy="mixed", judge={"name": "none"}))
    pairs = read_jsonl(result.pairs_path)[:n]
    if len(pairs) < n:
        raise SystemExit(f"only {len(pairs)} SeaPO pairs from {len(records)} UltraFeedback records")
    return pairs


def count_tokens(pairs: list[dict], tokenizer, max_length: int) -> int:
    from seapo.train.heldout import encode_response

    total = 0
    for p in pairs:
        for side in ("chosen", "rejected"):
            ids, _ = encode_response(tokenizer, p["prompt"], p[side]["content"], max_length)
            total += len(ids)
    return total


def run_trl(model_path: str, pairs: list[dict], epochs: float, max_length: int, out: str, algo: str) -> tuple:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    from seapo.models import load_tokenizer

    data = Dataset.from_list([{"prompt": p["prompt"], "chosen": [p["chosen"]], "rejected": [p["rejected"]]}
                              for p in pairs])  # KTOTrainer unpairs these itself
    config_cls, trainer_cls = (KTOConfig, KTOTrainer) if algo == "kto" else (DPOConfig, DPOTrainer)
    args = config_cls(output_dir=out, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                     max_length=max_length, learning_rate=5e-6, lr_scheduler_type="cosine", num_train_epochs=epochs,
                     logging_steps=1, save_strategy="no", report_to="none", seed=42, use_cpu=True)
    peft = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    t0, c0 = time.perf_counter(), time.process_time()
    trainer = trainer_cls(model=model_path, args=args, train_dataset=data,
                         processing_class=load_tokenizer(model_path, padding_side="right"), peft_config=peft)
    trainer.train()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return elapsed, cpu, losses, {}


def run_seapo(model_path: str, pairs_file: Path, epochs: float, max_length: int, out: str, algo: str,
              shared_prefix: bool = True, per_device_batch_size: int | None = None) -> tuple:
    from seapo.io import read_jsonl
    from seapo.train.config import TrainConfig
    from seapo.train.trainer import train

    cfg = TrainConfig(model=model_path, algo=algo, output_dir=out, epochs=epochs, max_length=max_length,
                      batch_size=4, shared_prefix=shared_prefix, heldout_fraction=0.0,
                      per_device_batch_size=per_device_batch_size,
                      merge=False, seed=42)  # micro-batch: seapo's choice unless given; effective batch 4
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(pairs_file, cfg)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    log = read_jsonl(result.log_path)
    losses = [r["loss"] for r in log if "loss" in r]
    saved = [r["shared_prefix/saved_fraction"] for r in log if "shared_prefix/saved_fraction" in r]
    return elapsed, cpu, losses, {**result.settings, "shared_prefix_saved_fraction": saved[-1] if saved else None}


SIDES = {"trl": ("dpo", "TRL DPOTrainer defaults"), "seapo": ("dpo", "seapo train --algo dpo"),
         "seapo-noshare": ("dpo", "seapo train --algo dpo --no-shared-prefix"),
         "trl-kto": ("kto", "TRL KTOTrainer defaults"), "seapo-kto": ("kto", "seapo train --algo kto"),
         "seapo-kto-noshare": ("kto", "seapo train --algo kto --no-shared-prefix"),
         "seapo-kto-noshare4": ("kto", "seapo train --algo kto --no-shared-prefix --per-device-batch-size 4")}
MICRO = {"seapo-kto-noshare4": 4}
"""Sides whose micro-batch is fixed (the others: seapo's choice)."""


def _child(args) -> None:
    """One side, in this (fresh) process; prints one JSON line."""
    import resource

    from seapo.models import embedded_model_dir

    model = str(embedded_model_dir())
    pairs_file = Path(args.pairs_file)
    from seapo.io import read_jsonl

    algo = SIDES[args.only][0]
    with tempfile.TemporaryDirectory() as tmp:
        if args.only.startswith("seapo"):
            wall, cpu, losses, settings = run_seapo(model, pairs_file, args.epochs, args.max_length, f"{tmp}/seapo",
                                                    algo, shared_prefix="noshare" not in args.only,
                                                    per_device_batch_size=MICRO.get(args.only))
        else:
            wall, cpu, losses, settings = run_trl(model, read_jsonl(pairs_file), args.epochs, args.max_length,
                                                  f"{tmp}/trl", algo)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print("RESULT " + json.dumps({"wall": wall, "cpu": cpu, "losses": losses, "settings": settings,
                                  "peak_mib": peak}), flush=True)


def _run_side(side: str, args, pairs_file: Path) -> dict:
    import subprocess

    cmd = [sys.executable, __file__, "--only", side, "--pairs-file", str(pairs_file), "--epochs", str(args.epochs),
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
    parser.add_argument("--kto", action="store_true", help="also time KTO (seapo vs TRL KTOTrainer defaults)")
    parser.add_argument("--skip-dpo", action="store_true", help="with --kto: time KTO only")
    parser.add_argument("--ablate", action="store_true", help="also time seapo with --no-shared-prefix")
    parser.add_argument("--only", choices=list(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--pairs-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        return _child(args)

    from seapo.io import write_jsonl
    from seapo.models import embedded_model_dir, load_tokenizer

    model = str(embedded_model_dir())
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    pairs = load_pairs(args.pairs, tmp / "inject")
    pairs_file = tmp / "pairs.jsonl"
    write_jsonl(pairs_file, pairs)
    tokens = count_tokens(pairs, load_tokenizer(model), args.max_length)
    seen_pairs, seen_tokens = args.pairs * args.epochs, tokens * args.epochs
    print(f"model SmolLM2-135M-Instruct (embedded), {args.pairs} SeaPO pairs (UltraFeedback + rules negatives) x "
          f"{args.epochs} epochs, {tokens} tokens per epoch (prompt+chosen, prompt+rejected), max length "
          f"{args.max_length}, batch 4 pairs; each side in a fresh process; load average at start "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)

    def report(side: str, r: dict) -> None:
        saved = r["settings"].get("shared_prefix_saved_fraction")
        micro = r["settings"].get("per_device_batch_size")
        print(f"{SIDES[side][1]}: {r['wall']:.1f} s  {seen_pairs / r['wall']:.3f} pairs/s  "
              f"{seen_tokens / r['wall']:.0f} tokens/s  (CPU time {r['cpu']:.1f} s, peak RSS {r['peak_mib']:.0f} MiB"
              + (f", micro-batch {micro}" if micro else "")
              + (f", shared prefix not recomputed: {saved:.1%} of tokens" if saved is not None else "") + ")",
              flush=True)

    groups = ([] if args.skip_dpo and args.kto else [("trl", "seapo")]) + ([("trl-kto", "seapo-kto")] if args.kto
                                                                          else [])
    results = {}
    for peer, ours in groups:
        for side in ((ours,) if args.skip_trl else (peer, ours)):
            results[side] = _run_side(side, args, pairs_file)
            report(side, results[side])
    if args.ablate:
        for ours, plain in (("seapo", "seapo-noshare"), ("seapo-kto", "seapo-kto-noshare"),
                            ("seapo-kto", "seapo-kto-noshare4")):
            if ours not in results:
                continue
            results[plain] = _run_side(plain, args, pairs_file)
            report(plain, results[plain])
            a, b = results[plain], results[ours]
            print(f"  {SIDES[ours][1]} vs {SIDES[plain][1]}: {a['wall'] / b['wall']:.2f}x wall time, "
                  f"{a['cpu'] / b['cpu']:.2f}x CPU time; loss per step:\n"
                  f"    shared:   {' '.join(f'{x:.4f}' for x in b['losses'])}\n"
                  f"    unshared: {' '.join(f'{x:.4f}' for x in a['losses'])}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    if args.skip_trl:
        return
    # CPU time is printed too: on a shared machine wall time also counts other people's work.
    for peer, ours in groups:
        a, b = results[peer], results[ours]
        print(f"speed-up {SIDES[ours][1]} / {SIDES[peer][1]}: {a['wall'] / b['wall']:.2f}x wall time, "
              f"{a['cpu'] / b['cpu']:.2f}x CPU time, peak RSS {b['peak_mib']:.0f} vs {a['peak_mib']:.0f} MiB")
        print("  loss per step (batches come in a different order: compare the trend and the last epoch):")
        print("    seapo:", " ".join(f"{x:.4f}" for x in b["losses"]))
        print("    TRL:  ", " ".join(f"{x:.4f}" for x in a["losses"]))


if __name__ == "__main__":
    sys.exit(main())
