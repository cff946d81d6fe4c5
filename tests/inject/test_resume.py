"""Kill a real `seapo inject` process mid-run, run it again, and check nothing is lost or redone."""

import json
import signal
import sqlite3
import subprocess
import sys
import time

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
