"""One process per output folder, for the stages run on their own too (issue 9, class 3):
``seapo train`` and ``seapo eval`` stop at once, naming the pid, when another process writes there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from seapo.outputs import FolderInUse


@pytest.fixture
def held(tmp_path):
    """``held(folder)``: another process holding ``folder``'s lock until the test ends."""
    procs = []

    def hold(folder: Path) -> int:
        code = ("import sys, time\nfrom seapo.outputs import folder_lock\n"
                "with folder_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n")
        proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc.pid

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_second_training_into_the_same_folder_stops_naming_the_first(held, pairs_file, tiny_model, tmp_path):
    from seapo.train.config import TrainConfig
    from seapo.train.trainer import train

    out = tmp_path / "train"
    pid = held(out)
    cfg = TrainConfig(model=str(tiny_model), output_dir=str(out), max_steps=1, max_length=128, merge=False)
    with pytest.raises(FolderInUse, match=f"pid {pid}"):
        train(pairs_file, cfg)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written beside the first


def test_a_second_evaluation_into_the_same_folder_stops_naming_the_first(held, tiny_model, shared_data, tmp_path):
    from seapo.evaluate.runner import EvalConfig, evaluate

    pid = held(tmp_path / "eval" / "base")
    config = EvalConfig(tasks=["truthfulqa_mc"], limit=1, data_dir=str(shared_data / "eval"),
                        out=str(tmp_path / "eval"), run_name="base")
    with pytest.raises(FolderInUse, match=f"pid {pid}"):
        evaluate(str(tiny_model), config)
    assert not (tmp_path / "eval" / "base" / "metrics.json").exists()


@pytest.fixture
def pairs_file(tmp_path, shared_data) -> Path:
    from seapo.io import write_jsonl
    from tests.train.conftest import demo_records, make_negatives

    path = tmp_path / "pairs" / "pairs.jsonl"
    write_jsonl(path, make_negatives(demo_records(shared_data, 4), ("logic",)))
    return path
