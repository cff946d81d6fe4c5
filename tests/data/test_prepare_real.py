"""prepare() on the real shared data: LLaMA-Factory DPO demo set and GSM8K train."""

from __future__ import annotations

import json
import re

from seapo.data.prepare import prepare
from seapo.data.schema import Record, record_id
from tests.data.helpers import read_jsonl, run_cli

ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def test_dpo_en_demo_records_match_source_rows(shared_data, tmp_path):
    src = shared_data / "preference" / "dpo_en_demo.json"
    raw = json.loads(src.read_text(encoding="utf-8"))
    result = prepare(src, out=tmp_path / "records.jsonl")

    # Expected records built independently from the raw rows; identical ones count once.
    expected, seen, dup_lines = [], set(), []
    for index, row in enumerate(raw):
        prompt = [{"role": ROLES[m["from"]], "content": m["value"].strip()} for m in row["conversations"]]
        response = row["chosen"]["value"].strip()
        key = record_id(prompt, response)
        if key in seen:
            dup_lines.append(index + 1)
            continue
        seen.add(key)
        expected.append((index + 1, prompt, response, row["rejected"]["value"].strip()))

    assert result.format == "sharegpt_dpo"
    assert (result.read, result.rejected, result.filtered) == (300, 0, 0)
    assert result.kept == len(expected)
    assert result.duplicates == len(dup_lines) == 300 - len(expected)
    assert result.read == result.kept + result.rejected + result.filtered + result.duplicates

    records = read_jsonl(result.out)
    assert len(records) == len(expected)
    for record, (line, prompt, response, rejected) in zip(records, expected, strict=True):
        assert list(record) == ["id", "prompt", "response", "rejected", "source"]  # docs/formats.md
        assert record["prompt"] == prompt
        assert record["response"] == response
        assert record["rejected"] == rejected
        assert record["source"] == {"dataset": str(src), "split": "train", "format": "sharegpt_dpo",
                                    "line": line}
        assert record["id"] == record_id(prompt, response) == Record.from_dict(record).id
        assert record["prompt"][-1]["role"] == "user"
    # multi-turn rows and system prompts survive
    assert any(len(r["prompt"]) > 3 for r in records)
    assert any(r["prompt"][0]["role"] == "system" for r in records)

    # duplicates are in the rejects file, with the line they repeat
    skipped = read_jsonl(result.rejects)
    assert [s["line"] for s in skipped] == dup_lines
    assert all(s["kind"] == "duplicate" and s["field"] == "id" for s in skipped)

    # a second run gives the same ids in the same order (content hash, not position or time)
    again = prepare(src, out=tmp_path / "again.jsonl")
    assert [r["id"] for r in read_jsonl(again.out)] == [r["id"] for r in records]
    assert again.out.read_bytes() == result.out.read_bytes()


def test_gsm8k_train_full_file(shared_data, tmp_path):
    src = shared_data / "source" / "gsm8k" / "train.jsonl"
    lines = src.read_text(encoding="utf-8").rstrip("\n").split("\n")  # not splitlines: rows contain U+2028
    result = prepare(src, out=tmp_path / "gsm8k.jsonl")
    assert result.format == "gsm8k"
    assert (result.read, result.kept, result.rejected) == (len(lines), len(lines), 0) == (7473, 7473, 0)
    records = read_jsonl(result.out)
    assert len({r["id"] for r in records}) == len(records)
    for number in (1, 2, 1000, 7473):
        raw, record = json.loads(lines[number - 1]), records[number - 1]
        assert record["source"]["line"] == number
        assert record["prompt"] == [{"role": "user", "content": raw["question"].strip()}]
        # calculator annotations removed, everything else (and the final answer) kept
        assert record["response"] == re.sub(r"<<[^<>]*>>", "", raw["answer"]).strip()
        assert "<<" not in record["response"]
        assert record["response"].endswith(raw["answer"].split("####")[-1].strip())


def test_gsm8k_cli_limit_and_keep_calculations(shared_data, tmp_path):
    src = shared_data / "source" / "gsm8k" / "train.jsonl"
    out = tmp_path / "slice.jsonl"
    result = run_cli(src, "--out", out, "--limit", "200", "--keep-calculations")
    assert result.exit_code == 0, result.output
    assert re.search(r"200\s*│\s*200\s*│\s*0\s*│\s*0\s*│\s*0", result.output), result.output
    records = read_jsonl(out)
    raw = [json.loads(line) for line in src.read_text(encoding="utf-8").split("\n")[:200]]
    assert [r["response"] for r in records] == [row["answer"].strip() for row in raw]
    assert [r["source"]["line"] for r in records] == list(range(1, 201))
    assert (tmp_path / "slice.rejects.jsonl").read_text() == ""
