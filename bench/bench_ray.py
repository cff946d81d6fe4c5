"""Rules injection on Ray Data: 2 workers against 1, and 1 worker against the plain local run.

    python bench/bench_ray.py [--data path.jsonl] [--n 7473] [--strategy all] [--chunk-size 512]

One run each, side by side, on the same records (GSM8K training solutions), each into a fresh
folder: the local run (no Ray), then Ray with 1 worker, then Ray with 2 (a local Ray cluster on
127.0.0.1 with 2 CPUs, started once before the timed runs; Ray Data's own first-job start-up --
its stats actor, paid once per cluster -- is taken by an untimed warm-up job whose time is
printed). Timed, with the shortcut audit off (it trains a classifier on the driver, the same
serial work in every run): the whole ``inject()`` call (plan, actor start-up, injection,
verifier, reference judge, store commits, output files), and its injection phase (up to the last
commit, before the output files, which the driver writes alike in every run). Goals: 2 workers
>= 1.6x one; 1 worker's overhead over the local run < 15%. The three runs' outputs must be
identical.

The machine may be shared: the load average (``uptime``) is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _shared import GSM8K_TRAIN, REPO, first_rows
from seapo.data.schema import Record
from seapo.inject.pipeline import InjectConfig, inject

FILES = ("pairs.jsonl", "rejected.jsonl", "kto.jsonl", "plan.jsonl")
SPEEDUP_GOAL = 1.6
OVERHEAD_GOAL = 0.15


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def timed(records: list[Record], out: Path, config: InjectConfig) -> tuple[float, float, float, float, dict]:
    """(whole run, injection phase -- up to the output files --, driver time in store commits, driver
    CPU time, summary)."""
    import seapo.inject.pipeline as pipeline
    from seapo.inject.store import InjectionStore

    marks: dict[str, float] = {"commit": 0.0}
    real_write, real_put = pipeline.write_outputs, InjectionStore.put_rows

    def write_outputs(*args, **kwargs):
        marks["outputs"] = time.perf_counter()
        return real_write(*args, **kwargs)

    def put_rows(self, items):
        began = time.perf_counter()
        real_put(self, items)
        marks["commit"] += time.perf_counter() - began

    pipeline.write_outputs, InjectionStore.put_rows = write_outputs, put_rows
    try:
        start, cpu = time.perf_counter(), time.process_time()
        result = inject(records, out, config)
        end, cpu = time.perf_counter(), time.process_time() - cpu
    finally:
        pipeline.write_outputs, InjectionStore.put_rows = real_write, real_put
    return end - start, marks["outputs"] - start, marks["commit"], cpu, result.summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(GSM8K_TRAIN), help="GSM8K-layout JSONL (question, answer)")
    parser.add_argument("--n", type=int, default=7473, help="records (default 7473: all of GSM8K train)")
    parser.add_argument("--strategy", default="all", help="inject strategy (default all: 3 items a record)")
    parser.add_argument("--chunk-size", type=int, default=512, help="items per batch/commit (default 512, the "
                        "rules injector's default)")
    args = parser.parse_args()

    import ray
    import ray.data

    records = [Record(prompt=[{"role": "user", "content": r["question"]}], response=r["answer"])
               for r in first_rows(args.data, args.n)]
    base = InjectConfig(injector="rules", strategy=args.strategy, chunk_size=args.chunk_size, show_progress=False,
                        audit={"shortcut_audit": False})
    print(f"{len(records)} records from {args.data}, strategy {args.strategy}, chunk {args.chunk_size}; "
          f"{os.cpu_count()} CPUs")
    print(f"load before: {load()}")
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", object_store_memory=300 * 2**20,
             runtime_env={"env_vars": {"PYTHONPATH": path}}, log_to_driver=False)
    try:
        start = time.perf_counter()
        ray.data.range(4).map_batches(lambda b: b, batch_size=2).take_all()  # Ray Data's first-job start-up
        print(f"Ray Data warm-up job (untimed below): {time.perf_counter() - start:.2f} s")
        with tempfile.TemporaryDirectory() as tmp:
            runs = {}
            for name, config in (("local", base),
                                 ("ray, 1 worker", base.updated({"ray.address": "auto", "ray.workers": 1})),
                                 ("ray, 2 workers", base.updated({"ray.address": "auto", "ray.workers": 2}))):
                seconds, injecting, committing, cpu, summary = timed(records, Path(tmp) / name.replace(" ", "_"),
                                                                     config)
                runs[name] = (seconds, summary, Path(tmp) / name.replace(" ", "_"), injecting)
                items = sum(c["attempted"] for c in summary["per_type"].values())
                print(f"{name:>15}: {seconds:7.2f} s whole run, {injecting:6.2f} s to the last commit "
                      f"({items / injecting:5.0f} items/s; commits {committing:.2f} s), then outputs "
                      f"{seconds - injecting:.2f} s; driver CPU {cpu:.2f} s  ({summary['pairs']} pairs, "
                      f"{summary['rejected_items']} rejected)")
            same = all((runs["local"][2] / f).read_bytes() == (run[2] / f).read_bytes()
                       for run in runs.values() for f in FILES)
            strip = ("wall_time_s", "ray")
            same = same and len({json.dumps({k: v for k, v in s.items() if k not in strip}, sort_keys=True)
                                 for _, s, _, _ in runs.values()}) == 1
    finally:
        ray.shutdown()
    for label, index in (("whole run", 0), ("injection phase", 3)):
        local, one, two = (runs[k][index] for k in ("local", "ray, 1 worker", "ray, 2 workers"))
        speedup, overhead = one / two, one / local - 1
        print(f"{label}: 2 workers vs 1: {speedup:.2f}x "
              f"(goal >= {SPEEDUP_GOAL}x: {'met' if speedup >= SPEEDUP_GOAL else 'NOT met'}); "
              f"1 worker vs local: {one / local:.2f}x the time, overhead {overhead:+.1%} "
              f"(goal < {OVERHEAD_GOAL:.0%}: {'met' if overhead < OVERHEAD_GOAL else 'NOT met'})")
    print(f"outputs identical across the three runs: {same}")
    print(f"load after: {load()}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
