"""Wall time of TruthfulQA MC1+MC2 (817 questions): seapo's evaluator vs lm-evaluation-harness.

    python bench/bench_truthfulqa.py [--model embedded] [--dtype auto] [--threads 1]
                                     [--limit N] [--lm-eval-limit N]

* seapo: ``seapo.evaluate.evaluate`` on the ``truthfulqa_mc`` task (MC1 and MC2 together),
  cache off, from the local TruthfulQA CSV: lm-eval's task configs and metrics (the one engine)
  over seapo's prefix-cached scorer (``--lm-backend hf`` times lm-eval's HFLM under seapo instead).
* peer: lm-eval's own ``truthfulqa_mc2`` task config run by ``lm_eval.simple_evaluate`` with its
  ``hf`` model (HFLM loads the same model folder itself). The task wants the Hub data set
  ``truthfulqa/truthful_qa``; to run offline it gets the same questions in memory through
  lm-eval's ``custom_dataset`` hook (same prompt, choices and ``process_results_mc2``).

``--lm-eval-limit N`` times lm-eval on the first N questions only and extrapolates its time
linearly to the full set (it is the slow side); the printout says so. Both sides use the
same dtype and thread count. Peer for the ratio: lm-eval's time; the goal is the full
evaluation in under 5 minutes on this machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "eval"


def run_seapo(model: str, data_dir: Path, dtype: str, threads: int | None, limit: int | None, batch: int,
              lm_backend: str = "seapo"):
    from seapo.evaluate.runner import EvalConfig, evaluate

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        config = EvalConfig(tasks=["truthfulqa_mc"], limit=limit, data_dir=str(data_dir), out=out, threads=threads,
                            use_cache=False, lm_backend=lm_backend, backend={"dtype": dtype, "batch_size": batch})
        result = evaluate(model, config)
        seconds = time.perf_counter() - t0  # includes model loading, like lm-eval's
    res = result.tasks["truthfulqa_mc"]
    return seconds, res.n, res.metrics, result.model["dtype"], f"{res.settings['engine']}/{res.settings['lm_backend']}"


def run_lm_eval(model: str, data_dir: Path, dtype: str, threads: int | None, limit: int | None, batch: int):
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    from seapo.evaluate.lmeval_engine import build_tasks
    from seapo.evaluate.loaders import TaskData, read_truthfulqa_csv
    from seapo.evaluate.tasks import get_task
    from seapo.models import resolve_model
    from seapo.models.loading import pick_dtype

    if threads:
        torch.set_num_threads(threads)
    items = read_truthfulqa_csv(data_dir / "truthfulqa" / "TruthfulQA.csv")[:limit]
    tasks = build_tasks(get_task("truthfulqa_mc"), TaskData(items), items)
    mc2 = next(t.config for t in tasks if t.name.endswith("mc2"))
    torch_dtype = str(pick_dtype(dtype, "cpu")).replace("torch.", "")
    t0 = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": resolve_model(model).path, "dtype": torch_dtype, "device": "cpu"},
        tasks=[mc2], task_manager=TaskManager(include_defaults=False), batch_size=batch, bootstrap_iters=0,
        verbosity="WARNING")
    seconds = time.perf_counter() - t0
    return seconds, len(items), out["results"][mc2["task"]]["acc,none"], torch_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="model argument (default: embedded)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA), help="folder with truthfulqa/TruthfulQA.csv")
    parser.add_argument("--dtype", default="auto", help="auto, bf16 or fp32 (both sides)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (both sides)")
    parser.add_argument("--limit", type=int, default=None, help="seapo: first N questions (default all 817)")
    parser.add_argument("--lm-backend", default="seapo", choices=["seapo", "hf"],
                        help="the model under lm-eval on seapo's side: seapo's scorer (default) or lm-eval's HFLM")
    parser.add_argument("--lm-eval-limit", type=int, default=None,
                        help="lm-eval: first N questions, time extrapolated to seapo's count")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)

    s_time, s_n, s_metrics, s_dtype, s_engine = run_seapo(args.model, data_dir, args.dtype, args.threads,
                                                          args.limit, args.batch_size, args.lm_backend)
    print(f"seapo   truthfulqa_mc  engine={s_engine}  n={s_n}  dtype={s_dtype}  {s_time:7.1f} s  "
          f"MC1={100 * s_metrics['mc1']:.2f}  MC2={100 * s_metrics['mc2']:.2f}", flush=True)
    peer_limit = args.lm_eval_limit if args.lm_eval_limit is not None else args.limit
    l_time, l_n, l_mc2, l_dtype = run_lm_eval(args.model, data_dir, args.dtype, args.threads, peer_limit,
                                              args.batch_size)
    print(f"lm-eval truthfulqa_mc2 n={l_n}  dtype={l_dtype}  {l_time:7.1f} s  MC2={100 * l_mc2:.2f}")
    l_full = l_time * s_n / l_n
    note = f" (extrapolated linearly from {l_n} questions, fixed costs included)" if l_n != s_n else ""
    print(f"lm-eval time for n={s_n}: {l_full:.1f} s{note}")
    print(f"ratio lm-eval / seapo: {l_full / s_time:.1f}x   (seapo MC1+MC2, lm-eval MC2 only)")
    if l_n != s_n:
        # The same subset on both sides: no extrapolation, both pay model loading once.
        sub_time, sub_n, sub_metrics, _, _ = run_seapo(args.model, data_dir, args.dtype, args.threads, l_n,
                                                       args.batch_size, args.lm_backend)
        print(f"seapo   truthfulqa_mc  n={sub_n}  {sub_time:7.1f} s  MC2={100 * sub_metrics['mc2']:.2f}  "
              f"-> same-subset ratio lm-eval / seapo: {l_time / sub_time:.1f}x")
    print(f"goal: full TruthfulQA under 300 s -> seapo {'met' if s_time < 300 and s_n == 817 else 'not met'}")


if __name__ == "__main__":
    main()
