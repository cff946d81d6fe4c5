#!/usr/bin/env bash
# Wheels of what bench/bench_gpu.py (and seapo's transformers backend and trainer) need beyond a GPU
# machine that has torch, transformers, peft, accelerate, numpy, pandas, pyarrow, pyyaml, rich and typer
# (docs/gpu.md), downloaded here into .whl/ (git-ignored) for the device tool to carry, plus the embedded
# SmolLM2 tokenizer files (.whl/smollm2-tokenizer/), so nothing is downloaded there.
#
#   scripts/gpu_wheels.sh [--with-pyarrow] [--python-version 3.12]
#
# The versions are this machine's (.venv, where seapo's tests pass), for CPython 3.12 on manylinux x86-64
# (the GPU machine's). --with-pyarrow adds pyarrow (~40 MiB), for a machine whose pyarrow is older than
# datasets needs (>= 24). Prints the folder's size: the device tool carries at most 64 MiB in all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
PYVER=3.12
PACKAGES=(trl datasets pydantic pydantic_core annotated-types typing-inspection dill multiprocess)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --with-pyarrow) PACKAGES+=(pyarrow); shift ;;
    --python-version) PYVER="$2"; shift 2 ;;
    *) echo "unknown option $1 (use --with-pyarrow, --python-version X.Y)" >&2; exit 2 ;;
  esac
done
OUT=.whl
mkdir -p "$OUT"
PINS=()
for name in "${PACKAGES[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
  PINS+=("$name==$version")
done
echo "gpu_wheels: downloading ${PINS[*]} for CPython $PYVER (manylinux x86-64)"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$OUT" "${PINS[@]}"
# The tokenizer of the embedded model (its files only: the 135M weights are not needed there).
TOKENIZER=$(PYTHONPATH=src "$PY" -c "from seapo.models import embedded_model_dir; print(embedded_model_dir())")
mkdir -p "$OUT/smollm2-tokenizer"
for f in tokenizer.json tokenizer_config.json special_tokens_map.json chat_template.jinja; do
  [[ -f "$TOKENIZER/$f" ]] && cp "$TOKENIZER/$f" "$OUT/smollm2-tokenizer/"
done
ls -l "$OUT"
echo "gpu_wheels: $(du -sh "$OUT" | cut -f1) in $OUT (the device tool carries 64 MiB at most, the working tree included)"
