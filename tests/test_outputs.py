"""Outputs are never mixed or half-written (issue 9, class 3; the output-path bullet of class 2):
the atomic writer on a full disk, a folder given for a file, a read-only place and stale temps of
killed writers; folder locks; output sets (seapo.outputs) and their readers."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import pytest

import seapo.io
from seapo.errors import InputError
from seapo.io import atomic_open, write_json, write_jsonl


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


class FullDisk:
    """A file whose disk is full: ``write`` succeeds until ``free`` characters, then ENOSPC;
    with ``free=None`` writes are buffered and the final flush (and close) fail, as they do
    when the last block does not fit."""

    def __init__(self, f, free=None):
        self.f, self.free, self.written = f, free, 0

    def write(self, text):
        self.written += len(text)
        if self.free is not None and self.written > self.free:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(text)

    def flush(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fileno(self):
        return self.f.fileno()

    def close(self):
        self.f.close()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def full_disk(monkeypatch):
    real = os.fdopen

    def install(free=None):
        monkeypatch.setattr(seapo.io.os, "fdopen", lambda *a, **k: FullDisk(real(*a, **k), free))

    return install


@pytest.mark.parametrize("free", [100, None], ids=["write", "last-flush"])
def test_a_full_disk_is_a_clear_error_and_leaves_the_old_file_and_no_temp(tmp_path, full_disk, free):
    target = tmp_path / "pairs.jsonl"
    target.write_text("old\n")
    full_disk(free)
    with pytest.raises(InputError) as err:
        write_jsonl(target, ({"n": i, "text": "x" * 50} for i in range(100)))
    assert isinstance(err.value, OSError)
    assert str(target) in str(err.value) and "No space left on device" in str(err.value)
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_an_out_that_is_a_folder_is_refused_before_writing(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        with atomic_open(tmp_path) as f:
            f.write("never")
    assert _leftovers(tmp_path) == [] and not any(".tmp-" in p for p in _leftovers(tmp_path.parent))


def test_seapo_prepare_out_a_folder_exits_2_naming_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "seapo.cli", "prepare", "demo", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert str(tmp_path) in "".join(proc.stderr.split())  # rich may wrap the path
    assert "is a folder" in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert _leftovers(tmp_path) == [] and not any(".tmp-" in p for p in _leftovers(tmp_path.parent))


def test_a_read_only_place_is_a_clear_error(tmp_path):
    # /sys is read-only even for root; a 0o555 folder is for everyone else.
    with pytest.raises(InputError, match=r"/sys/seapo-test: cannot create this folder"):
        write_json("/sys/seapo-test/out.json", {})
    if os.geteuid() != 0:
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o555)
        with pytest.raises(InputError, match="cannot write in this folder"):
            write_json(locked / "out.json", {})
    proc = subprocess.run([sys.executable, "-m", "seapo.cli", "prepare", "demo", "--out", "/sys/seapo-test/r.jsonl"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "/sys/seapo-test" in "".join(proc.stderr.split()) and "Traceback" not in proc.stderr


def test_the_next_writer_removes_the_temps_of_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".pairs.jsonl.tmp-{dead_pid}-0a1b2c3d"
    live = tmp_path / f".pairs.jsonl.tmp-{os.getppid()}-0a1b2c3d"  # a writer still at work
    stale.write_text("half a file")
    live.write_text("being written")
    write_jsonl(tmp_path / "pairs.jsonl", [{"a": 1}])
    assert not stale.exists() and live.exists()
    assert json.loads((tmp_path / "pairs.jsonl").read_text()) == {"a": 1}


def test_a_folder_lock_refuses_a_second_process_naming_its_pid_and_is_released_by_kill_9(tmp_path):
    from seapo.outputs import FolderInUse, folder_lock

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom seapo.outputs import folder_lock\n"
                               "with folder_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)",
                               str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUse) as err:
            with folder_lock(tmp_path):
                pass
        assert f"pid {holder.pid}" in str(err.value) and str(tmp_path) in str(err.value)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with folder_lock(tmp_path), folder_lock(tmp_path):  # free again; nested in one process is fine
        pass


def test_an_output_set_is_verified_by_its_readers(tmp_path):
    from seapo.outputs import MANIFEST, IncompleteOutputs, OutputSet, check_member, verify_set

    out = tmp_path / "set"
    output_set = OutputSet(out, "inject", {"seed": 1}, fix="rerun the thing")
    output_set.begin()
    write_jsonl(out / "pairs.jsonl", [{"a": 1}])
    with pytest.raises(IncompleteOutputs, match=rf"incomplete inject output set.*pid {os.getpid()}.*rerun the thing"):
        verify_set(out)
    write_json(out / "summary.json", {"pairs": 1})
    manifest = output_set.commit(["pairs.jsonl", "summary.json"])
    assert verify_set(out, stage="inject", settings={"seed": 1}) == manifest
    assert set(manifest["files"]) == {"pairs.jsonl", "summary.json"} and len(manifest["files"]["pairs.jsonl"]
                                                                              ["sha256"]) == 64
    with pytest.raises(IncompleteOutputs, match="other settings"):
        verify_set(out, settings={"seed": 2})
    write_jsonl(out / "pairs.jsonl", [{"a": 2}])  # same size, other content
    with pytest.raises(IncompleteOutputs, match="pairs.jsonl was changed"):
        check_member(out / "pairs.jsonl", stage="inject")
    (out / "pairs.jsonl").unlink()
    with pytest.raises(IncompleteOutputs, match="pairs.jsonl is missing"):
        verify_set(out)
    (out / MANIFEST).unlink()
    with pytest.raises(IncompleteOutputs, match=f"{MANIFEST} is missing"):
        verify_set(out)


def test_a_users_own_pairs_file_is_read_but_a_seapo_folder_without_manifest_is_not(tmp_path):
    from seapo.train.data import load_preferences

    row = {"prompt": [{"role": "user", "content": "q"}], "chosen": "good", "rejected": "bad"}
    own = tmp_path / "mine"
    write_jsonl(own / "pairs.jsonl", [row])
    write_jsonl(own / "kto.jsonl", [])  # generic names beside it do not make it a seapo folder
    write_json(own / "dataset_info.json", {})
    assert len(load_preferences(own / "pairs.jsonl").groups) == 1
    legacy = tmp_path / "inject"
    write_jsonl(legacy / "pairs.jsonl", [row])
    (legacy / "injections.sqlite").write_bytes(b"")
    with pytest.raises(InputError, match=r"inject.*injections.sqlite.*no _complete.json.*seapo inject"):
        load_preferences(legacy / "pairs.jsonl")


def test_seapo_compare_refuses_an_eval_set_that_changed(tmp_path):
    from seapo.evaluate.compare import load_metrics
    from seapo.outputs import OutputSet

    eval_dir = tmp_path / "eval"
    output_set = OutputSet(eval_dir, "eval", "k")
    output_set.begin()
    write_json(eval_dir / "base" / "metrics.json", {"model": {"name": "m"}, "tasks": {}})
    output_set.commit(["base/metrics.json"])
    assert load_metrics(eval_dir / "base")["model"] == {"name": "m"}
    write_json(eval_dir / "base" / "metrics.json", {"model": {"name": "other"}, "tasks": {}})
    with pytest.raises(InputError, match="base/metrics.json"):
        load_metrics(eval_dir / "base")
    loose = tmp_path / "loose.json"  # a metrics.json of its own: read as it is
    write_json(loose, {"model": {}, "tasks": {}})
    assert load_metrics(loose)["tasks"] == {}


def test_inject_removes_the_temps_older_seapo_versions_left_and_locks_its_folder(tmp_path, shared_data):
    from seapo.inject.pipeline import InjectConfig, inject
    from tests.inject.helpers import gsm8k_records

    out = tmp_path / "inject"
    out.mkdir()
    legacy = [out / ".pairs.jsonl.k2j_x9a1", out / ".negatives.jsonl.abcdefgh"]  # tempfile.mkstemp's names
    for p in legacy:
        p.write_text("86 MB of half a file")
    other = out / ".notes.txt.abcdefgh"  # not one of the set's files: not ours to remove
    other.write_text("x")
    inject(gsm8k_records(shared_data, 4), out, InjectConfig(injector="rules"))
    assert not any(p.exists() for p in legacy) and other.exists()
    assert (out / ".lock").is_file() and (out / "_complete.json").is_file()


def test_a_full_disk_under_the_resume_store_is_a_clear_error(tmp_path):
    import sqlite3

    from seapo.inject.store import InjectionStore, ItemResult

    store = InjectionStore(tmp_path / "injections.sqlite", "k")

    class Full:
        def __getattr__(self, name):
            return getattr(store.db, name)

        def __enter__(self):
            raise sqlite3.OperationalError("database or disk is full")

        def __exit__(self, *exc):
            return False

    real, store.db = store.db, Full()
    with pytest.raises(InputError, match=r"injections.sqlite: cannot store finished items \(database or disk is full"):
        store.put_many([ItemResult("r", "logic", False, None, None, False, 0.0, 0, "x")])
    store.db = real
    store.close()
