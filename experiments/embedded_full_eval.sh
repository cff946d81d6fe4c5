#!/usr/bin/env bash
# Full TruthfulQA (bf16 default and fp32) and full MMLU of the embedded model on this machine:
# the figures in docs/evaluation.md ("--dtype auto" and "Full benchmarks on this machine").
# Each `seapo eval` prints its scores; metrics.json under OUT has them with each task's `seconds`.
# The bf16 TruthfulQA figure and its timing against lm-eval come from bench/bench_truthfulqa.py.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${SEAPO_SHARED_DATA:-../shared/data}/eval
OUT=${1:-runs/embedded-full-eval}
.venv/bin/seapo eval --model embedded --tasks truthfulqa_mc --data-dir "$DATA" --out "$OUT" --run-name tqa-bf16
.venv/bin/seapo eval --model embedded --tasks truthfulqa_mc --data-dir "$DATA" --out "$OUT" --run-name tqa-fp32 \
    --dtype fp32 --threads 1
.venv/bin/seapo eval --model embedded --tasks mmlu --data-dir "$DATA" --out "$OUT" --run-name mmlu-bf16
