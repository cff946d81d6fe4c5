"""Kill a real `seapo inject` process mid-run, run it again, and check nothing is lost or redone."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.inject.helpers import gsm8k_records, write_records

N_RECORDS = 40


def _command(records, out, model):
    return [sys.executable, "-m", "seapo.cli", "inject", str(records), "--out", str(out), "--injector", "llm",
            "--model", str(model), "--batch-size", "4", "--max-new-tokens", "6", "--dtype", "fp32",
            "--max-attempts", "1", "--fallback", "rules", "--strategy", "all", "--chunk-size", "4"]


def _stored(db):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def test_kill_and_resume_finishes_without_duplicates_or_redone_items(tmp_path, shared_data, tiny_model):
    records = write_records(tmp_path / "records.jsonl", gsm8k_records(shared_data, N_RECORDS))
    out = tmp_path / "run"
    db = out / "injections.sqlite"
    proc = subprocess.Popen(_command(records, out, tiny_model), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while _stored(db) < 8 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _stored(db)
    assert 0 < before < N_RECORDS * 3, "the process must be killed mid-run"
    with sqlite3.connect(db) as conn:
        first_session = dict(conn.execute("SELECT record_id || error_type, session FROM items").fetchall())

    subprocess.run(_command(records, out, tiny_model), check=True, capture_output=True)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT record_id || error_type, session FROM items").fetchall()
    assert len(rows) == N_RECORDS * 3 == len(dict(rows))
    after = dict(rows)
    assert all(after[key] == session for key, session in first_session.items())  # finished items not redone
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_items"] == before
    negatives = [json.loads(x)["id"] for x in (out / "negatives.jsonl").read_text().splitlines()]
    rejected = (out / "rejected.jsonl").read_text().splitlines()
    assert len(negatives) == len(set(negatives)) and len(negatives) + len(rejected) == N_RECORDS * 3


# --------------------------------------------------------------------------------------------- kill -9 while
# writing the outputs, a second process on the same folder, a full disk (issue 9, class 3)

KILL_IN_WRITE = """
import os, signal, sys
import seapo.inject.outputs as outputs
from seapo.cli import main
from seapo.io import atomic_open

real, after, mid_file = outputs.write_jsonl, int(sys.argv[1]), sys.argv[2]
written = []

def write_jsonl(path, rows):
    if os.path.basename(path) == mid_file:  # killed halfway through this file
        with atomic_open(path) as f:
            f.write("{\\"half\\": ")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    count = real(path, rows)
    written.append(path)
    if len(written) == after:
        os.kill(os.getpid(), signal.SIGKILL)
    return count

outputs.write_jsonl = write_jsonl
sys.argv = ["seapo", "inject", *sys.argv[3:]]
main()
"""


def _rules(records, out, *extra):
    return [str(records), "--out", str(out), "--injector", "rules", *extra]


def _killed_in_write(args, after=0, mid_file="-"):
    proc = subprocess.run([sys.executable, "-c", KILL_IN_WRITE, str(after), mid_file, *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_a_rerun_killed_after_pairs_were_replaced_is_refused_by_every_reader(tmp_path, shared_data):
    from seapo.errors import InputError
    from seapo.train.data import load_preferences

    records = write_records(tmp_path / "records.jsonl", gsm8k_records(shared_data, 12))
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "seapo.cli", "inject", *_rules(records, out, "--strategy", "all")],
                   check=True, capture_output=True, timeout=300)
    assert len(load_preferences(out / "pairs.jsonl").groups) == 12
    # Other settings, killed once negatives.jsonl and pairs.jsonl are replaced (kto/summary still the old ones).
    _killed_in_write(_rules(records, out, "--strategy", "mixed"), after=2)
    assert json.loads((out / "summary.json").read_text())["strategy"] == "all"
    for name in ("pairs.jsonl", "negatives.jsonl", "kto.jsonl"):
        with pytest.raises(InputError, match=r"incomplete inject output set[\s\S]*seapo inject"):
            load_preferences(out / name)
    train = subprocess.run([sys.executable, "-m", "seapo.cli", "train", str(out / "negatives.jsonl"), "--model",
                            str(tmp_path), "--out", str(tmp_path / "train")], capture_output=True, text=True,
                           timeout=300)
    assert train.returncode == 2 and "incomplete inject output set" in " ".join(train.stderr.split())
    # The rerun completes the set; readers accept it again.
    subprocess.run([sys.executable, "-m", "seapo.cli", "inject", *_rules(records, out, "--strategy", "mixed")],
                   check=True, capture_output=True, timeout=300)
    assert json.loads((out / "summary.json").read_text())["strategy"] == "mixed"
    assert len(load_preferences(out / "pairs.jsonl").groups) == 12
    assert json.loads((out / "_complete.json").read_text())["files"].keys() >= {"pairs.jsonl", "summary.json"}


def test_the_temp_file_of_a_writer_killed_mid_file_is_removed_by_the_next_run(tmp_path, shared_data):
    records = write_records(tmp_path / "records.jsonl", gsm8k_records(shared_data, 12))
    out = tmp_path / "run"
    _killed_in_write(_rules(records, out), mid_file="kto.jsonl")
    assert [p.name for p in out.iterdir() if p.name.startswith(".kto.jsonl")], "the kill left a temp file"
    subprocess.run([sys.executable, "-m", "seapo.cli", "inject", *_rules(records, out)], check=True,
                   capture_output=True, timeout=300)
    assert [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".lock"] == []
    assert (out / "_complete.json").is_file()


SLOW_INJECT = """
import sys, time
import seapo.inject.pipeline as pipeline
from seapo.cli import main

def slow(*args, **kwargs):
    print("ready", flush=True)
    time.sleep(120)

pipeline.write_outputs = slow
sys.argv = ["seapo", "inject", *sys.argv[1:]]
main()
"""


def test_a_second_inject_into_the_same_folder_stops_naming_the_first(tmp_path, shared_data):
    records = write_records(tmp_path / "records.jsonl", gsm8k_records(shared_data, 12))
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-c", SLOW_INJECT, *_rules(records, out)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        assert first.stdout.readline().strip() == "ready"
        second = subprocess.run([sys.executable, "-m", "seapo.cli", "inject", *_rules(records, out)],
                                capture_output=True, text=True, timeout=300)
        text = " ".join(second.stderr.split())
        assert second.returncode == 2 and f"pid {first.pid}" in text, second.stderr
        assert str(out) in "".join(second.stderr.split())  # rich may wrap the path
        assert not (out / "pairs.jsonl").exists()
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    subprocess.run([sys.executable, "-m", "seapo.cli", "inject", *_rules(records, out)], check=True,
                   capture_output=True, timeout=300)  # kill -9 released the lock


FULL_DISK = """
import errno, os, sys
import seapo.io
from seapo.cli import main

real = os.fdopen

class FullDisk:
    def __init__(self, f):
        self.f, self.n = f, 0
    def write(self, text):
        self.n += len(text)
        if self.n > 2000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(text)
    def __getattr__(self, name):
        return getattr(self.f, name)

seapo.io.os.fdopen = lambda *a, **k: FullDisk(real(*a, **k))
sys.argv = ["seapo", "inject", *sys.argv[1:]]
main()
"""


def test_inject_on_a_full_disk_exits_2_naming_the_file_and_leaves_no_temp(tmp_path, shared_data):
    records = write_records(tmp_path / "records.jsonl", gsm8k_records(shared_data, 12))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, *_rules(records, out)], capture_output=True, text=True,
                          timeout=300)
    text = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr
    assert "No space left on device" in text and "Traceback" not in text
    assert str(out / "negatives.jsonl") in "".join(proc.stderr.split())  # rich may wrap the path
    assert [p.name for p in out.iterdir() if ".tmp-" in p.name or p.name.startswith(".neg")] == []
