"""Output sets and folder locks: a stage publishes its files as one set, and one process at a time
writes into a folder.

**Output set.** A stage's output files (``seapo inject``'s pairs, negatives, KTO rows, summary...)
belong together. :class:`OutputSet` publishes them as one:

1. :meth:`OutputSet.begin` -- before the first file is rewritten -- removes the folder's
   manifest ``_complete.json`` and writes ``_incomplete.json`` (stage, settings hash, pid, time);
2. the stage writes its files (each one atomically, :func:`seapo.io.atomic_open`);
3. :meth:`OutputSet.commit` writes ``_complete.json`` last, listing every file with its size and
   SHA-256 and the settings hash, then removes ``_incomplete.json``.

A reader calls :func:`verify_set` (a folder) or :func:`check_member` (one file of it): a folder
without a manifest, an interrupted one, or one whose files are missing or differ from what the
manifest lists is refused with an :class:`~seapo.errors.InputError` naming the folder, what is
wrong and how to fix it. A file outside any seapo output folder (a user's own ``pairs.jsonl``)
is accepted as it is.

**Folder lock.** :func:`folder_lock` takes ``fcntl.flock`` on ``FOLDER/.lock`` without waiting;
a second process gets :class:`FolderInUse` naming the folder and the pid holding it. The kernel
drops the lock when its holder dies, even by ``kill -9``. While holding it, the writer removes the
temporary files a killed writer left in the folder.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from seapo.errors import InputError
from seapo.fingerprint import file_digest, folder_digest, stable_hash
from seapo.io import WriteError, remove_stale_temps, write_json

MANIFEST = "_complete.json"
INCOMPLETE = "_incomplete.json"
LOCK = ".lock"
FORMAT = 1
_LEGACY_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}$")
"""Temporary files of seapo's atomic writer before they carried the writer's pid (tempfile.mkstemp)."""


class FolderInUse(InputError):
    """Another process holds the folder's lock."""


class IncompleteOutputs(InputError):
    """A stage's output set is missing, interrupted, or its files disagree with its manifest."""


# --------------------------------------------------------------------------------------------- locks

_held: dict[str, list[int]] = {}
"""Locks this process holds: real path -> [fd, depth] (a nested lock of the same folder is free)."""


def lock_holder(folder: str | Path) -> int | None:
    """The pid written in the folder's lock file (the last process that took it), if any."""
    try:
        text = (Path(folder) / LOCK).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, fix: str = "wait for it to finish (or stop it), or choose another "
                                                  "output folder") -> Iterator[Path]:
    """Hold ``FOLDER/.lock`` (created with the folder); raises :class:`FolderInUse` at once when
    another process holds it. Removes stale temporary files of dead writers in the folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create this folder ({exc.strerror or exc})", path=str(folder)) from None
    key = os.path.realpath(folder)
    if key in _held:
        _held[key][1] += 1
        try:
            yield folder
        finally:
            _held[key][1] -= 1
        return
    try:
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise WriteError(f"cannot write in this folder ({exc.strerror or exc})", path=str(folder)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = lock_holder(folder)
        who = f"pid {holder}" if holder else "pid unknown"
        raise FolderInUse(f"another seapo process ({who}) is writing to this folder; {fix}",
                          path=str(folder)) from None
    try:
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            raise WriteError(f"cannot write the lock file ({exc.strerror or exc})", path=str(folder / LOCK)) from None
        _held[key] = [fd, 1]
        remove_stale_temps(folder)
        yield folder
    finally:
        _held.pop(key, None)
        os.close(fd)  # releases the lock


def remove_legacy_temps(folder: str | Path, names: Iterable[str]) -> None:
    """Remove ``.{name}.XXXXXXXX`` temporaries of older seapo versions for the set's own file
    ``names``; only call it while holding the folder's lock (no other writer is at work)."""
    wanted = set(names)
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _LEGACY_TEMP.match(entry.name)
            if match and match["name"] in wanted and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


# --------------------------------------------------------------------------------------------- output sets


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _entry(path: Path) -> dict[str, Any]:
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        return {"kind": "folder", "size": sum(p.stat().st_size for p in files), "sha256": folder_digest(path)}
    return {"size": path.stat().st_size, "sha256": file_digest(path)}


class OutputSet:
    """The output files of one stage in one folder, published together (see the module docstring).

    ``settings``: anything JSON-able that decides the outputs (its :func:`stable_hash` is recorded);
    ``fix``: how to remake the set, for the readers' errors.
    """

    def __init__(self, folder: str | Path, stage: str, settings: Any, *, fix: str | None = None) -> None:
        self.folder = Path(folder)
        self.stage = stage
        self.settings = stable_hash(settings)
        self.fix = fix

    def begin(self) -> None:
        """Unpublish the folder's current set: call before rewriting any file of it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / MANIFEST).unlink(missing_ok=True)
        write_json(self.folder / INCOMPLETE, {"stage": self.stage, "settings": self.settings, "pid": os.getpid(),
                                              "started": _now(), "fix": self.fix})

    def commit(self, names: Iterable[str]) -> dict[str, Any]:
        """Publish the set: ``names`` (files or folders in the folder, all written) and the settings."""
        files = {}
        for name in names:
            path = self.folder / name
            if not path.exists():
                raise FileNotFoundError(f"{path}: part of the {self.stage} output set but not written")
            files[name] = _entry(path)
        manifest = {"format": FORMAT, "stage": self.stage, "settings": self.settings, "files": files,
                    "created": _now(), "fix": self.fix}
        write_json(self.folder / MANIFEST, manifest)
        (self.folder / INCOMPLETE).unlink(missing_ok=True)
        return manifest


def unpublish(folder: str | Path) -> None:
    """Remove a folder's manifest (its set is about to be redone or discarded)."""
    (Path(folder) / MANIFEST).unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_set_folder(folder: str | Path) -> bool:
    """Whether the folder holds (or was writing) a seapo output set."""
    folder = Path(folder)
    return (folder / MANIFEST).exists() or (folder / INCOMPLETE).exists()


def verify_set(folder: str | Path, *, stage: str | None = None, settings: Any = None,
               fix: str | None = None) -> dict[str, Any]:
    """The folder's manifest, after checking the set is complete and every file is as listed
    (size and SHA-256). ``stage``/``settings``: what the
    caller expects it to be. Raises :class:`IncompleteOutputs` naming the folder and the problem."""
    folder = Path(folder)
    manifest = _read(folder / MANIFEST)
    what = f"{stage} output set" if stage else "output set"
    if manifest is None:
        started = _read(folder / INCOMPLETE)
        how = fix or (started or {}).get("fix") or "rerun the stage that writes it"
        if started is not None:
            raise IncompleteOutputs(
                f"incomplete {started.get('stage', stage or '')} output set: the run that was writing it "
                f"(pid {started.get('pid')}, started {started.get('started')}) stopped before it finished, so its "
                f"files may mix two runs; {how}", path=str(folder))
        state = "is not valid JSON" if (folder / MANIFEST).exists() else "is missing"
        raise IncompleteOutputs(f"not a complete {what}: {MANIFEST} {state} (an interrupted run, or one of an "
                                f"older seapo); {how}", path=str(folder))
    how = fix or manifest.get("fix") or "rerun the stage that writes it"
    if stage is not None and manifest.get("stage") != stage:
        raise IncompleteOutputs(f"holds a '{manifest.get('stage')}' output set, not a '{stage}' one", path=str(folder))
    if settings is not None and manifest.get("settings") != stable_hash(settings):
        raise IncompleteOutputs(f"the {what} here was written with other settings; {how}", path=str(folder))
    problems = []
    for name, entry in (manifest.get("files") or {}).items():
        path = folder / name
        if not path.exists():
            problems.append(f"{name} is missing")
            continue
        try:
            now = _entry(path)
        except OSError as exc:
            problems.append(f"{name} cannot be read ({exc.strerror or exc})")
            continue
        if now["size"] != entry.get("size"):
            problems.append(f"{name} has {now['size']} bytes, the set was published with {entry.get('size')}")
        elif now["sha256"] != entry.get("sha256"):
            problems.append(f"{name} was changed after the set was published")
    if problems:
        raise IncompleteOutputs(f"the {what} is inconsistent ({'; '.join(problems)}); {how}", path=str(folder))
    return manifest


def check_member(path: str | Path, *, stage: str, markers: Iterable[str] = (), fix: str | None = None
                 ) -> dict[str, Any] | None:
    """Before reading one file of a stage's outputs: when its folder holds a seapo output set
    (a manifest or an interrupted one), verify the set; when it has none but looks like a
    ``stage`` output folder (one of ``markers`` is there), refuse; otherwise (a file of the
    user's own) accept it. Returns the manifest, or None for a file outside any set."""
    path = Path(path)
    folder = path.parent
    if is_set_folder(folder):
        return verify_set(folder, fix=fix)
    present = [m for m in markers if m != path.name and (folder / m).exists()]
    if present:
        how = fix or "rerun the stage that writes it"
        raise IncompleteOutputs(
            f"this folder looks like a seapo {stage} output folder (it has {', '.join(present)}) but has no "
            f"{MANIFEST}, so {path.name} may belong to an interrupted run or to another run than the files beside "
            f"it; {how}", path=str(folder))
    return None
