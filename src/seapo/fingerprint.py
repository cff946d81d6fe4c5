"""One fingerprint scheme for every cache and resume store: content hashes, stable across
processes and machines.

* :func:`stable_hash` -- settings (any JSON-able value) -> hex digest of its canonical JSON.
  Never Python's ``hash()``, which is salted per process.
* :func:`file_digest` / :func:`folder_digest` -- SHA-256 of file contents. A digest is
  remembered in the seapo cache under the file's identity (device, inode, size, mtime and
  ctime), so a 14 GB checkpoint is read once; any write to the file changes its ctime, so a
  changed file is hashed again even when its size and modification time were put back.
* :func:`model_fingerprint` -- what a model argument resolves to: the content of a local
  model folder, or a Hub id with its revision.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from seapo.io import cache_dir

_CHUNK = 1 << 22
_DIGEST_DIR = "digests"


def stable_hash(value: Any, length: int = 16) -> str:
    """Hex SHA-256 (first ``length`` digits) of ``value`` as canonical JSON (sorted keys)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _identity(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's contents (hex), memoized by the file's identity."""
    path = Path(path)
    memo = cache_dir() / _DIGEST_DIR / hashlib.sha256(_identity(path).encode()).hexdigest()[:32]
    try:
        return memo.read_text().strip()
    except OSError:
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    hexdigest = digest.hexdigest()
    try:  # best effort: a read-only cache only costs re-hashing
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
        tmp.write_text(hexdigest)
        os.replace(tmp, memo)
    except OSError:
        pass
    return hexdigest


def folder_digest(folder: str | Path) -> str:
    """Digest of every file under ``folder`` (relative names and contents; hidden files skipped)."""
    folder = Path(folder)
    parts = [(str(p.relative_to(folder)), file_digest(p)) for p in sorted(folder.rglob("*"))
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return stable_hash(parts, length=64)


def model_fingerprint(path: str | Path) -> str:
    """Fingerprint of a resolved model (``ResolvedModel.path``: a folder or a Hub id), without loading it.

    A local folder is identified by its contents (weights, config, tokenizer, chat template), so
    two copies of one model share cached results and a fine-tune never does. A Hub id is
    identified by the id and ``$HF_REVISION`` (default ``main``): pin a revision by
    downloading it into a folder.
    """
    if Path(path).is_dir():
        return stable_hash(["folder", folder_digest(path)])
    return stable_hash(["hub", str(path), os.environ.get("HF_REVISION", "main")])
