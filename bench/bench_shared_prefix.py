"""Per-step cost of the shared-prefix forward, one training step at a time, on SeaPO pairs.

Embedded SmolLM2-135M-Instruct, fp32 weights under TRL's default bf16 autocast, LoRA r=8 on all
linear layers, real SeaPO pairs
(UltraFeedback best-rated responses + one rules negative each, as ``bench_train.py`` makes them),
``seapo``'s own row order. For one algorithm it builds the shared-prefix trainer once and times the
same micro-batches (TRL's ``compute_loss`` + backward, i.e. every forward TRL makes per step:
for KTO the KL forward, the main forward and -- ``--no-precompute`` -- both reference forwards)
in three modes, interleaved batch by batch so a change of the machine's load hits all three:

* ``trl``: TRL's unshared forward (``trainer.pack = False``);
* ``compact``: TRL's forward with the fused LM head scoring only labelled positions
  (:func:`seapo.train.shared_prefix.compact_lm_head`; dpo/kto only);
* ``packed``: the shared-prefix forward (packing + compact head), what ``seapo train`` runs.

    .venv/bin/python bench/bench_shared_prefix.py [--algo kto] [--pairs 16] [--micro 4] [--repeats 2]

Prints the median step time per mode and the fraction of tokens packing did not recompute; the
load average before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="kto", choices=["kto", "dpo", "simpo", "orpo"])
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--micro", type=int, default=4, help="rows per micro-batch (kto) or pairs (others)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2, help="passes over the batches (the first warms up)")
    parser.add_argument("--no-precompute", action="store_true", help="kto/dpo: reference forwards every step")
    args = parser.parse_args()
    print(f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    from bench_train import load_pairs
    from seapo.models import embedded_model_dir, load_tokenizer
    from seapo.train.data import Pair, ordered_kto_rows, ordered_pair_rows
    from seapo.train.shared_prefix import compact_lm_head, shared_prefix_trainer

    model_path = str(embedded_model_dir())
    tmp = Path(tempfile.mkdtemp(prefix="bench-sp-"))
    raw = load_pairs(args.pairs, tmp / "inject")
    pairs = [Pair(r["record_id"], r["prompt"], r["chosen"]["content"], r["rejected"]["content"], r["error_type"])
             for r in raw]
    common = dict(output_dir=str(tmp / "out"), max_length=args.max_length, report_to="none", use_cpu=True,
                  train_sampling_strategy="sequential", dataloader_num_workers=0)
    if args.algo == "kto":
        from trl import KTOConfig

        rows = ordered_kto_rows(pairs, args.micro, seed=42, group_by_length=True)
        cfg = KTOConfig(**common, per_device_train_batch_size=args.micro,
                        precompute_ref_log_probs=not args.no_precompute)
    else:
        rows = ordered_pair_rows(pairs, args.micro, seed=42, group_by_length=True)
        if args.algo == "dpo":
            from trl import DPOConfig

            cfg = DPOConfig(**common, per_device_train_batch_size=args.micro,
                            precompute_ref_log_probs=not args.no_precompute)
        elif args.algo == "simpo":
            from trl.experimental.cpo import CPOConfig

            cfg = CPOConfig(**common, per_device_train_batch_size=args.micro, loss_type="simpo", cpo_alpha=0.0)
        else:
            from trl.experimental.orpo import ORPOConfig

            cfg = ORPOConfig(**common, per_device_train_batch_size=args.micro)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    trainer = shared_prefix_trainer(args.algo)(
        model=model, args=cfg, train_dataset=Dataset.from_list(rows),
        processing_class=load_tokenizer(model_path, padding_side="right"),
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainer.model.train()
    batches = list(trainer.get_train_dataloader())
    modes = ["trl", "compact", "packed"] if args.algo in ("kto", "dpo") else ["trl", "packed"]
    times: dict[str, list[float]] = {m: [] for m in modes}
    losses: dict[str, list[float]] = {m: [] for m in modes}
    saved0, total0 = trainer.packer.shared_tokens, trainer.packer.tokens_unshared
    for repeat in range(args.repeats):
        for batch in batches:
            for mode in modes:
                trainer.pack = mode == "packed"
                trainer.model.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                with compact_lm_head() if mode == "compact" else contextlib.nullcontext():
                    loss = trainer.compute_loss(trainer.model, batch)
                    loss.backward()
                elapsed = time.perf_counter() - t0
                if repeat == args.repeats - 1 or args.repeats == 1:
                    times[mode].append(elapsed)
                    losses[mode].append(float(loss.detach()))
                    print(f"  pass {repeat + 1} batch {len(times[mode])} {mode}: {elapsed * 1000:.0f} ms "
                          f"(load {os.getloadavg()[0]:.1f})", flush=True)
    packer = trainer.packer
    saved = (packer.shared_tokens - saved0) / max(1, packer.tokens_unshared - total0)
    tokens = sum(int(b[k].sum()) for b in batches for k in ("attention_mask", "KL_attention_mask") if k in b)
    print(f"{args.algo}: {len(pairs)} pairs, {len(batches)} micro-batches of {args.micro}, max length "
          f"{args.max_length}, {'reference every step' if args.no_precompute else 'reference precomputed'}"
          + (f", {tokens} tokens per pass (main + KL rows)" if args.algo == "kto" else ""))
    base = statistics.median(times["trl"])
    for mode in modes:
        med = statistics.median(times[mode])
        print(f"  {mode:8s} median step {med * 1000:8.1f} ms  total {sum(times[mode]):7.2f} s  "
              f"speed-up vs trl {base / med:.2f}x")
    print(f"  tokens not recomputed by packing: {saved:.1%}")
    worst = max(abs(a - b) for a, b in zip(losses["trl"], losses["packed"], strict=True))
    print(f"  largest |loss(packed) - loss(trl)| over the batches: {worst:.2e}")
    print(f"load average at end {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
