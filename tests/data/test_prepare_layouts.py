"""Every layout on small files written here, every container (jsonl, json, csv, parquet, datasets)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seapo.data.prepare import PrepareConfig, PrepareError, prepare
from seapo.errors import InputError
from tests.data.helpers import read_jsonl, run_cli, write_jsonl

SYSTEM = "You are a careful assistant."


def msg(role, content):
    return {"role": role, "content": content}


def ultrafeedback_rows():
    """Rows with the HuggingFaceH4/ultrafeedback_binarized columns."""
    return [
        {"prompt": "What is 2 + 2?", "prompt_id": "a1",
         "chosen": [msg("user", "What is 2 + 2?"), msg("assistant", "2 + 2 = 4.")],
         "rejected": [msg("user", "What is 2 + 2?"), msg("assistant", "2 + 2 = 5.")],
         "messages": [msg("user", "What is 2 + 2?"), msg("assistant", "2 + 2 = 4.")],
         "score_chosen": 9.0, "score_rejected": 2.0},
        {"prompt": "And times 3?", "prompt_id": "a2",
         "chosen": [msg("system", SYSTEM), msg("user", "What is 2 + 2?"), msg("assistant", "4."),
                    msg("user", "And times 3?"), msg("assistant", "4 × 3 = 12.")],
         "rejected": [msg("system", SYSTEM), msg("user", "What is 2 + 2?"), msg("assistant", "4."),
                      msg("user", "And times 3?"), msg("assistant", "4 × 3 = 7.")],
         "messages": [], "score_chosen": 8.0, "score_rejected": 1.0},
    ]


def check_ultrafeedback(records, dataset, line_offset=0):
    assert [r["source"]["format"] for r in records] == ["ultrafeedback"] * 2
    assert records[0]["prompt"] == [msg("user", "What is 2 + 2?")]
    assert records[0]["response"] == "2 + 2 = 4."
    assert records[0]["rejected"] == "2 + 2 = 5."
    # multi-turn: the prompt is every chosen message before the last assistant message
    assert records[1]["prompt"] == [msg("system", SYSTEM), msg("user", "What is 2 + 2?"),
                                    msg("assistant", "4."), msg("user", "And times 3?")]
    assert records[1]["response"] == "4 × 3 = 12."
    assert records[1]["rejected"] == "4 × 3 = 7."
    assert [r["source"]["line"] for r in records] == [1 + line_offset, 2 + line_offset]
    assert {r["source"]["dataset"] for r in records} == {dataset}


def test_ultrafeedback_through_the_hub_code_path(tmp_path):
    """The Hub branch (datasets.load_dataset) fed a local parquet file with UltraFeedback's layout."""
    data = tmp_path / "train_prefs.parquet"
    pq.write_table(pa.Table.from_pylist(ultrafeedback_rows()), data)
    result = prepare("parquet", out=tmp_path / "uf.jsonl", data_files=str(data), split="train",
                     cache_dir=str(tmp_path / "hf-cache"))
    assert (result.read, result.kept, result.format, result.split) == (2, 2, "ultrafeedback", "train")
    records = read_jsonl(result.out)
    check_ultrafeedback(records, "parquet")
    assert {r["source"]["split"] for r in records} == {"train"}


def test_ultrafeedback_local_jsonl_and_trl_text_rows(tmp_path):
    src = write_jsonl(tmp_path / "uf.jsonl", ultrafeedback_rows() + [
        # TRL's plain-text preference rows read with the same layout
        {"prompt": "Name a prime.", "chosen": "7 is prime.", "rejected": "9 is prime."},
        # TRL conversational rows: chosen holds only the answer, the prompt is separate
        {"prompt": [msg("user", "Name an even prime.")], "chosen": [msg("assistant", "2.")],
         "rejected": [msg("assistant", "4.")]},
        # seapo's own pairs.jsonl rows: chosen/rejected are single assistant messages
        {"id": "x-logic", "prompt": [msg("user", "Is 1 prime?")], "chosen": msg("assistant", "No."),
         "rejected": msg("assistant", "Yes."), "error_type": "logic"},
    ])
    result = prepare(src, out=tmp_path / "out.jsonl")
    records = read_jsonl(result.out)
    check_ultrafeedback(records[:2], str(src))
    assert records[2]["prompt"] == [msg("user", "Name a prime.")]
    assert (records[2]["response"], records[2]["rejected"]) == ("7 is prime.", "9 is prime.")
    assert records[3]["prompt"] == [msg("user", "Name an even prime.")]
    assert (records[3]["response"], records[3]["rejected"]) == ("2.", "4.")
    assert (records[4]["prompt"], records[4]["response"], records[4]["rejected"]) == \
           ([msg("user", "Is 1 prime?")], "No.", "Yes.")


def test_sharegpt_dpo_roles_mapped(tmp_path):
    rows = [{"conversations": [{"from": "system", "value": SYSTEM}, {"from": "human", "value": "Hi"},
                               {"from": "gpt", "value": "Hello!"}, {"from": "user", "value": "Capital of France?"}],
             "chosen": {"from": "gpt", "value": "Paris."},
             "rejected": {"from": "assistant", "value": "Lyon."}}]
    src = tmp_path / "dpo.json"
    src.write_text(json.dumps(rows, indent=2))
    result = prepare(src, out=tmp_path / "out.jsonl")
    (record,) = read_jsonl(result.out)
    assert result.format == "sharegpt_dpo"
    assert record["prompt"] == [msg("system", SYSTEM), msg("user", "Hi"), msg("assistant", "Hello!"),
                                msg("user", "Capital of France?")]
    assert (record["response"], record["rejected"]) == ("Paris.", "Lyon.")
    assert record["source"]["line"] == 1


def test_sharegpt_kto_false_rows_are_filtered_not_rejected(tmp_path):
    rows = [
        {"messages": [msg("user", "2+2?"), msg("assistant", "4")], "label": True},
        {"messages": [msg("user", "2+2?"), msg("assistant", "5")], "label": False},
        {"messages": [{"from": "human", "value": "3+3?"}, {"from": "gpt", "value": "6"}], "label": True},
        {"messages": [msg("user", "3+3?"), msg("assistant", "7")], "label": "maybe"},
    ]
    src = write_jsonl(tmp_path / "kto.jsonl", rows)
    result = prepare(src, out=tmp_path / "out.jsonl")
    assert result.format == "sharegpt_kto"
    assert (result.read, result.kept, result.filtered, result.rejected) == (4, 2, 1, 1)
    records = read_jsonl(result.out)
    assert [(r["prompt"][-1]["content"], r["response"]) for r in records] == [("2+2?", "4"), ("3+3?", "6")]
    skipped = read_jsonl(result.rejects)
    assert [(s["line"], s["kind"], s["field"]) for s in skipped] == [(2, "filtered", "label"),
                                                                      (4, "rejected", "label")]
    assert "false" in skipped[0]["reason"]
    assert skipped[0]["raw"] == rows[1]  # nothing lost: the row itself is kept in the rejects file


def test_alpaca_with_input_system_history_and_preference_columns(tmp_path):
    rows = [
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour",
         "system": SYSTEM, "history": [["Translate 'cat'.", "chat"]]},
        {"instruction": "Say hi.", "input": "", "output": "Hi!"},
        {"instruction": "Pick the larger number.", "input": "3 or 8", "chosen": "8", "rejected": "3"},
    ]
    src = write_jsonl(tmp_path / "alpaca.jsonl", rows)
    result = prepare(src, out=tmp_path / "out.jsonl")
    records = read_jsonl(result.out)
    assert result.format == "alpaca" and result.kept == 3
    assert records[0]["prompt"] == [msg("system", SYSTEM), msg("user", "Translate 'cat'."),
                                    msg("assistant", "chat"), msg("user", "Translate to French.\nGood morning")]
    assert records[0]["response"] == "Bonjour"
    assert records[1]["prompt"] == [msg("user", "Say hi.")]
    assert (records[2]["response"], records[2]["rejected"]) == ("8", "3")


def test_gsm8k_from_csv_with_line_numbers(tmp_path):
    src = tmp_path / "gsm.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "answer"])
        writer.writerow(["What is 6 x 7?", "6 x 7 = <<6*7=42>>42\n#### 42"])  # two physical lines
        writer.writerow(["What is 10 - 3?", "10 - 3 = 7\n#### 7"])
    result = prepare(src, out=tmp_path / "out.jsonl")
    records = read_jsonl(result.out)
    assert result.format == "gsm8k"
    assert [r["response"] for r in records] == ["6 x 7 = 42\n#### 42", "10 - 3 = 7\n#### 7"]
    assert [r["source"]["line"] for r in records] == [2, 4]  # the line where each data row starts


def test_generic_fields_in_parquet(tmp_path):
    src = tmp_path / "generic.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"q": "Largest planet?", "good": "Jupiter.", "bad": "Mars.", "sys": SYSTEM},
        {"q": "Smallest planet?", "good": "Mercury.", "bad": None, "sys": None},
    ]), src)
    result = prepare(src, out=tmp_path / "out.jsonl", prompt_field="q", response_field="good",
                     rejected_field="bad", system_field="sys")
    records = read_jsonl(result.out)
    assert result.format == "generic"
    assert records[0]["prompt"] == [msg("system", SYSTEM), msg("user", "Largest planet?")]
    assert (records[0]["response"], records[0]["rejected"]) == ("Jupiter.", "Mars.")
    assert records[1]["prompt"] == [msg("user", "Smallest planet?")] and records[1]["rejected"] is None
    assert [r["source"]["line"] for r in records] == [1, 2]


def test_generic_cli_and_records_round_trip(tmp_path):
    src = write_jsonl(tmp_path / "qa.jsonl", [{"ask": "Boiling point of water?", "reply": "100 °C at sea level."}])
    out = tmp_path / "records.jsonl"
    result = run_cli(src, "--out", out, "--prompt-field", "ask", "--response-field", "reply")
    assert result.exit_code == 0, result.output
    first = read_jsonl(out)
    # seapo's own records are a layout too: preparing them again keeps ids and content
    again = prepare(out, out=tmp_path / "again.jsonl")
    assert again.format == "seapo"
    second = read_jsonl(again.out)
    assert [(r["id"], r["prompt"], r["response"]) for r in second] == \
           [(r["id"], r["prompt"], r["response"]) for r in first]


def test_json_file_with_json_lines_content(tmp_path):
    src = tmp_path / "lines.json"
    src.write_text('{"question": "1+1?", "answer": "#### 2"}\n{"question": "2+2?", "answer": "#### 4"}\n')
    result = prepare(src, out=tmp_path / "out.jsonl")
    assert (result.format, result.kept) == ("gsm8k", 2)
    assert [r["source"]["line"] for r in read_jsonl(result.out)] == [1, 2]


def test_explicit_format_overrides_detection(tmp_path):
    # rows with both alpaca and gsm8k keys are ambiguous for auto-detection ...
    src = write_jsonl(tmp_path / "both.jsonl", [{"instruction": "I", "output": "O", "question": "Q", "answer": "A"}])
    with pytest.raises(InputError) as excinfo:
        prepare(src, out=tmp_path / "out.jsonl")
    assert "ambiguous" in str(excinfo.value) and "alpaca" in str(excinfo.value) and "gsm8k" in str(excinfo.value)
    # ... and --format settles it
    result = prepare(src, out=tmp_path / "out.jsonl", format="gsm8k")
    assert read_jsonl(result.out)[0]["response"] == "A"


def test_unknown_layout_lists_the_known_ones(tmp_path):
    src = write_jsonl(tmp_path / "odd.jsonl", [{"foo": "x", "bar": "y"}])
    result = run_cli(src, "--out", tmp_path / "out.jsonl")
    assert result.exit_code == 2  # an unrecognised layout is bad input (docs/cli.md)
    for name in ("ultrafeedback", "sharegpt_dpo", "sharegpt_kto", "alpaca", "gsm8k", "generic", "foo"):
        assert name in result.output
    assert str(src) in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_config_validation():
    with pytest.raises(InputError, match="unknown format"):
        PrepareConfig(format="yaml")
    with pytest.raises(InputError, match="generic"):
        PrepareConfig(format="generic", prompt_field="q")
    with pytest.raises(InputError, match="limit"):
        PrepareConfig(limit=0)


def test_hub_source_offline_is_a_clear_error(tmp_path):
    """The real Hub path: with no network it must fail with an error naming the data set."""
    code = ("from seapo.data.prepare import prepare\n"
            f"prepare('HuggingFaceH4/ultrafeedback_binarized', out={str(tmp_path / 'o.jsonl')!r}, "
            f"cache_dir={str(tmp_path / 'cache')!r})\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "InputError" in proc.stderr
    assert "HuggingFaceH4/ultrafeedback_binarized" in proc.stderr and "train_prefs" in proc.stderr


def test_limit_stops_reading(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", [{"question": f"{i}+1?", "answer": f"#### {i + 1}"} for i in range(50)])
    result = prepare(src, out=tmp_path / "out.jsonl", limit=7)
    assert (result.read, result.kept) == (7, 7)
    with pytest.raises(PrepareError):  # nothing there at all
        prepare(write_jsonl(tmp_path / "empty.jsonl", []), out=tmp_path / "e.jsonl")
