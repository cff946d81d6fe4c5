"""Small, shared file helpers: JSONL in and out, atomic writes, the cache folder."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from seapo.errors import InputError


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_object)`` for each non-blank line of a JSONL file (gzip too).

    Strict, for files seapo wrote (records, pairs, predictions): a line that is not UTF-8, not
    JSON, has a duplicate key, a NaN/Infinity or nesting too deep raises
    :class:`~seapo.errors.InputError` naming the file and line. (``seapo prepare`` reads users'
    files tolerantly instead: :mod:`seapo.data.parsing`.)
    """
    import gzip

    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with (gzip.open if gzipped else open)(path, "rb") as f:
        for number, data in enumerate(f, start=1):
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text (byte {exc.start + 1} of the line)", path=str(path),
                                 line=number) from None
            if line.strip():
                try:
                    yield number, json.loads(line, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                                             parse_float=_finite_float)
                except json.JSONDecodeError as exc:
                    raise InputError(f"invalid JSON ({exc.msg})", path=str(path), line=number) from None
                except (ValueError, RecursionError) as exc:
                    raise InputError(f"invalid JSON ({exc})", path=str(path), line=number) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"duplicate key {dup!r}")
    return obj


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{text} is too large for a float")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON")


def read_jsonl(path: str | Path) -> list[Any]:
    return [obj for _, obj in iter_jsonl(path)]


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Standard JSON, always: a non-finite number (a mean of nothing, a diverged loss) is written
    as ``null``, never as the ``NaN``/``Infinity`` tokens other readers reject."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=indent)
    except ValueError:  # rare: only then walk the object
        return json.dumps(finite(obj), ensure_ascii=False, allow_nan=False, indent=indent)


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (recursively through dicts, lists, tuples)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> int:
    """Write rows atomically (temp file + rename) so a crash never leaves half a file."""
    count = 0
    with atomic_open(path) as f:
        for row in rows:
            f.write(dumps(row) + "\n")
            count += 1
    return count


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as f:
        f.write(dumps(obj, indent=2) + "\n")


class WriteError(InputError, OSError):
    """An output that cannot be written (a folder given for a file, a read-only place, a full disk):
    names the path; exit code 2. Also an ``OSError``, so code catching those keeps working."""


TEMP_INFIX = ".tmp-"
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]+$")
_WRITE_ONLY_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
"""Errors only a write gives: raised in an atomic_open body, they are about the output."""


def temp_name(name: str) -> str:
    """``.{name}.tmp-{pid}-{random}``: the writer's pid in the name, so a stale one is recognisable."""
    return f".{name}{TEMP_INFIX}{os.getpid()}-{secrets.token_hex(4)}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, it is someone else's
        return True
    return True


def remove_stale_temps(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove the temporary files of :class:`atomic_open` in ``folder`` (of ``name`` only, when
    given) whose writer process is gone: what a killed writer left. Returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or pid_alive(pid):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _reason(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += "; free some space or choose another output folder"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason += "; choose a folder you can write to"
    return reason


class atomic_open:  # noqa: N801 - used like open()
    """``with atomic_open(path) as f``: writes to a temp file, renames over ``path`` on success.

    On any failure (an exception in the body, a full disk on the last flush) the temp file is
    removed and ``path`` is left as it was. The temp is named by :func:`temp_name`; one left by a
    killed writer is removed by the next writer of the same file (:func:`remove_stale_temps`).
    An output that cannot be written raises :class:`WriteError` naming the path.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __enter__(self):
        path, parent = self.path, self.path.parent
        if path.is_dir():
            raise WriteError("is a folder: give the path of a file to write", path=str(path))
        if parent.exists() and not parent.is_dir():
            raise WriteError(f"is a file, so '{path.name}' cannot be written inside it", path=str(parent))
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(f"cannot create this folder ({_reason(exc)})", path=str(parent)) from None
        remove_stale_temps(parent, path.name)
        self.tmp = parent / temp_name(path.name)
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise WriteError(f"cannot write in this folder ({_reason(exc)})", path=str(parent)) from None
        self.f = os.fdopen(fd, "w", encoding="utf-8")
        return self.f

    def __exit__(self, exc_type, exc, tb) -> None:
        published = False
        try:
            if exc_type is not None:
                with contextlib.suppress(OSError):
                    self.f.close()
                if isinstance(exc, OSError) and not isinstance(exc, WriteError) and \
                        exc.errno in _WRITE_ONLY_ERRNOS:
                    raise WriteError(f"writing failed ({_reason(exc)}); the file was left as it was",
                                     path=str(self.path)) from exc
                return
            try:
                self.f.flush()
                os.fsync(self.f.fileno())
                self.f.close()
                os.replace(self.tmp, self.path)
                published = True
            except OSError as err:
                with contextlib.suppress(OSError):
                    self.f.close()
                raise WriteError(f"writing failed ({_reason(err)}); the file was left as it was",
                                 path=str(self.path)) from err
        finally:
            if not published:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.tmp)


def open_store(path: Path, schema: str) -> sqlite3.Connection:
    """A resume store: SQLite in WAL mode (readers do not block the writer) with ``schema`` created;
    a store that cannot be opened or is not a database is a :class:`WriteError` naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
    except sqlite3.DatabaseError as exc:
        raise WriteError(f"cannot open the resume store ({exc})", path=str(path)) from None
    return db


def cache_dir() -> Path:
    """The seapo cache: ``$SEAPO_CACHE``, else ``$XDG_CACHE_HOME/seapo``, else ``~/.cache/seapo``."""
    if env := os.environ.get("SEAPO_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seapo"
