"""`seapo split`: every record in exactly one part, the part a function of the record alone."""

import json
import subprocess
import sys

import pytest

from seapo.data.prepare import PrepareConfig, prepare
from seapo.data.split import SplitConfig, part_of, split_records
from seapo.errors import InputError
from seapo.io import read_jsonl


@pytest.fixture(scope="module")
def records(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("uf") / "records.jsonl"
    prepare(out=out, config=PrepareConfig(
        source=str(shared_data / "source" / "ultrafeedback" / "train_1k.jsonl"), progress=False))
    return out


def test_every_record_lands_in_one_part_stable_under_subsets(records, tmp_path):
    config = SplitConfig(parts={"validation": 0.1, "heldout": 0.2}, seed=3)
    full = split_records(records, tmp_path / "full", config)
    rows = read_jsonl(records)
    parts = {name: [r["id"] for r in read_jsonl(path)] for name, path in full.paths.items()}
    assert sorted(i for ids in parts.values() for i in ids) == sorted(r["id"] for r in rows)  # nothing lost
    assert list(full.paths) == ["validation", "heldout", "train"]
    assert full.counts == {n: len(ids) for n, ids in parts.items()}
    # the fractions hold up to binomial noise (about 1,000 rows: sd about 9 and 13 records)
    assert abs(full.counts["validation"] - 100) < 40 and abs(full.counts["heldout"] - 200) < 50
    # a record's part does not depend on the other records: split every third row on its own
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(json.dumps(r) + "\n" for r in rows[::3]))
    small = split_records(subset, tmp_path / "small", config)
    where = {i: n for n, ids in parts.items() for i in ids}
    for name, path in small.paths.items():
        assert all(where[r["id"]] == name for r in read_jsonl(path))
    # another seed, another split
    other = {r["id"]: part_of(r["id"], config.updated(seed=4)) for r in rows}
    assert sum(other[i] != where[i] for i in where) > 100
    manifest = json.loads(full.manifest.read_text())
    assert manifest["counts"] == full.counts and manifest["config"]["seed"] == 3


def test_bad_settings_and_bad_rows_are_named(records, tmp_path):
    for parts, match in (({"heldout": 0.6, "validation": 0.5}, "sum to"), ({"held out": 0.2}, "part name"),
                         ({"heldout": 0.0}, "fraction")):
        with pytest.raises(ValueError, match=match):
            SplitConfig(parts=parts)
    with pytest.raises(ValueError, match="both a part and the rest"):
        SplitConfig(parts={"train": 0.2})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(records.read_text().splitlines()[0] + "\n" + json.dumps({"prompt": [], "response": "x"}) + "\n")
    with pytest.raises(InputError) as err:
        split_records(bad, tmp_path / "out")
    assert err.value.line == 2 and err.value.field == "prompt"
    assert not (tmp_path / "out" / "train.jsonl").exists()  # nothing half-written


def test_cli(records, tmp_path):
    out = subprocess.run([sys.executable, "-m", "seapo.cli", "split", str(records), "--out", str(tmp_path),
                          "--set", "parts={heldout: 0.25}", "--seed", "1"], capture_output=True, text=True, check=True)
    assert "heldout:" in out.stdout and "train:" in out.stdout
    counts = json.loads((tmp_path / "split.json").read_text())["counts"]
    assert set(counts) == {"heldout", "train"} and sum(counts.values()) == len(read_jsonl(records))
