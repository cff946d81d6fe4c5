"""Bad input: every kind lands in the rejects file with line, field and reason; counts add up."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seapo.data.prepare import PrepareError, prepare
from seapo.errors import InputError
from tests.data.helpers import read_jsonl, run_cli, write_jsonl

GOOD = {"instruction": "Name a primary colour.", "input": "", "output": "Red."}


def assert_counts_add_up(result):
    assert result.read == result.kept + result.rejected + result.filtered + result.duplicates
    skipped = read_jsonl(result.rejects)
    kinds = [s["kind"] for s in skipped]
    assert (kinds.count("rejected"), kinds.count("filtered"), kinds.count("duplicate")) == \
           (result.rejected, result.filtered, result.duplicates)
    assert len(read_jsonl(result.out)) == result.kept if result.written else True
    for s in skipped:  # every entry says where and why
        assert isinstance(s["line"], int) and s["line"] >= 1
        assert s["field"] and s["reason"]
    return {s["line"]: s for s in skipped}


def test_bad_rows_in_jsonl(tmp_path):
    src = tmp_path / "alpaca.jsonl"
    lines = [
        json.dumps(GOOD),                                                     # 1 ok
        '{"instruction": "Unclosed", "output": "x"',                          # 2 malformed JSON
        "",                                                                   # 3 blank: not a row
        json.dumps({"instruction": "No output here."}),                       # 4 missing field
        json.dumps({"instruction": "   ", "output": "Empty instruction."}),   # 5 empty
        json.dumps({"instruction": None, "output": "Null instruction."}),     # 6 null
        json.dumps({"instruction": "Number output.", "output": 42}),          # 7 number
        json.dumps({"instruction": ["a", "list"], "output": "List."}),        # 8 list for text
        json.dumps(["not", "an", "object"]),                                  # 9 not an object
        json.dumps({"instruction": "Input is a dict.", "input": {"x": 1}, "output": "y"}),  # 10
        json.dumps({"instruction": "Bad history.", "output": "y", "history": [["only one"]]}),  # 11
        json.dumps({"instruction": "Fine too.", "output": "Blue."}),          # 12 ok
    ]
    src.write_bytes(("\n".join(lines) + "\n").encode() + b'{"instruction": "\xff\xfe", "output": "x"}\n')  # 13
    result = prepare(src, out=tmp_path / "records.jsonl")
    assert result.format == "alpaca"
    assert (result.read, result.kept, result.rejected) == (12, 2, 10)
    by_line = assert_counts_add_up(result)
    expected = {
        2: ("<row>", "malformed JSON"),
        4: ("output", "missing"),
        5: ("instruction", "is empty"),
        6: ("instruction", "is null"),
        7: ("output", "expected text, got number"),
        8: ("instruction", "expected text, got list"),
        9: ("<row>", "expected an object"),
        10: ("input", "expected text, got object"),
        11: ("history[0]", "pair"),
        13: ("<row>", "not valid UTF-8"),
    }
    assert set(by_line) == set(expected)
    for line, (field, reason) in expected.items():
        assert by_line[line]["field"] == field, by_line[line]
        assert reason in by_line[line]["reason"], by_line[line]
    assert by_line[2]["raw"] == lines[1]  # the unparsed text is kept
    assert by_line[7]["raw"] == {"instruction": "Number output.", "output": 42}
    assert result.reject_fields["<row>"] == 3
    # default rejects path: next to the output
    assert result.rejects == tmp_path / "records.rejects.jsonl"
    assert [r["source"]["line"] for r in read_jsonl(result.out)] == [1, 12]


def test_bad_messages_unknown_roles_and_prompt_not_ending_with_user(tmp_path):
    def row(conversations, chosen=None):
        return {"conversations": conversations, "chosen": chosen or {"from": "gpt", "value": "Answer."},
                "rejected": {"from": "gpt", "value": "Wrong."}}

    rows = [
        row([{"from": "human", "value": "Q?"}]),                                         # 1 ok
        row([{"from": "robot", "value": "Q?"}]),                                         # 2 unknown role
        row([{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]),         # 3 ends with assistant
        row([{"from": "human", "value": "Q?"}], chosen={"from": "human", "value": "A"}),  # 4 chosen not assistant
        row([{"from": "human", "value": ""}]),                                           # 5 empty message
        row([{"from": "human", "value": 7}]),                                            # 6 number content
        row("Q?"),                                                                       # 7 text, not messages
        row([]),                                                                         # 8 no messages
        row([{"from": "human"}]),                                                        # 9 no value
        row([{"from": "human", "value": "Hi"}, {"from": "system", "value": "S"},
             {"from": "human", "value": "Q?"}]),                                         # 10 system late
        {"conversations": [{"from": "human", "value": "Q?"}], "chosen": None},           # 11 null chosen
        row([{"from": "human", "value": "Q?"}], chosen={"from": "gpt", "value": ["x"]}),  # 12 list content
    ]
    src = write_jsonl(tmp_path / "dpo.jsonl", rows)
    result = prepare(src, out=tmp_path / "out.jsonl")
    assert (result.format, result.read, result.kept, result.rejected) == ("sharegpt_dpo", 12, 1, 11)
    by_line = assert_counts_add_up(result)
    expected = {
        2: ("conversations[0].from", "unknown role 'robot'"),
        3: ("conversations", "must end with a user turn"),
        4: ("chosen", "expected an assistant"),
        5: ("conversations[0].value", "is empty"),
        6: ("conversations[0].value", "expected text, got number"),
        7: ("conversations", "expected a list of messages, got text"),
        8: ("conversations", "is empty"),
        9: ("conversations[0].value", "missing"),
        10: ("conversations[1]", "system message after the first turn"),
        11: ("chosen", "is null"),
        12: ("chosen.value", "expected text, got list"),
    }
    for line, (field, reason) in expected.items():
        assert by_line[line]["field"] == field, by_line[line]
        assert reason in by_line[line]["reason"], by_line[line]


def test_wrong_declared_format_rejects_every_row_with_a_hint(tmp_path):
    src = write_jsonl(tmp_path / "alpaca.jsonl", [GOOD, {**GOOD, "output": "Blue."}])
    with pytest.raises(PrepareError) as excinfo:
        prepare(src, out=tmp_path / "out.jsonl", format="gsm8k")
    result = excinfo.value.result
    assert (result.read, result.kept, result.rejected) == (2, 0, 2)
    assert result.reject_fields == {"question": 2}
    assert "alpaca" in result.hint and "--format alpaca" in str(excinfo.value)
    assert not (tmp_path / "out.jsonl").exists() and not result.written
    assert_counts_add_up(result)

    cli = run_cli(src, "--out", tmp_path / "out.jsonl", "--format", "gsm8k")
    assert cli.exit_code == 1
    assert "field 'question': missing" in cli.output and "--format alpaca" in cli.output


def test_files_that_are_not_their_format(tmp_path):
    not_json = tmp_path / "data.json"
    not_json.write_text("instruction,output\nhello,world\n")
    with pytest.raises(InputError) as excinfo:
        prepare(not_json, out=tmp_path / "o.jsonl")
    assert str(not_json) in str(excinfo.value) and "not JSON" in str(excinfo.value)

    broken_array = tmp_path / "broken.json"
    broken_array.write_text('[{"question": "q", "answer": "a"},')
    with pytest.raises(InputError, match=r"broken\.json.*not valid JSON"):
        prepare(broken_array, out=tmp_path / "o.jsonl")

    not_parquet = tmp_path / "data.parquet"
    not_parquet.write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(InputError, match=r"data\.parquet.*not a readable Parquet"):
        prepare(not_parquet, out=tmp_path / "o.jsonl")

    with pytest.raises(InputError, match="file not found"):
        prepare(tmp_path / "missing.jsonl", out=tmp_path / "o.jsonl")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(InputError, match="unsupported file type"):
        prepare(notes, out=tmp_path / "o.jsonl")

    cli = run_cli(not_parquet, "--out", tmp_path / "o.jsonl")
    # bad input (docs/cli.md)
    assert cli.exit_code == 2 and "data.parquet" in cli.output and "Traceback" not in cli.output
    assert not (tmp_path / "o.jsonl").exists()


def test_json_array_and_parquet_lines_are_row_numbers(tmp_path):
    rows = [{"question": "1+1?", "answer": "#### 2"}, {"question": 5, "answer": "#### 5"},
            {"question": "3+3?", "answer": None}]
    json_src = tmp_path / "rows.json"
    json_src.write_text(json.dumps(rows, indent=2))
    parquet_src = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "1+1?", "answer": "#### 2"},
                                         {"question": "", "answer": "#### 5"},
                                         {"question": "3+3?", "answer": None}]), parquet_src)
    for src, second_reason in ((json_src, "expected text, got number"), (parquet_src, "is empty")):
        result = prepare(src, out=tmp_path / f"{src.stem}-{src.suffix[1:]}.jsonl")
        by_line = assert_counts_add_up(result)
        assert (result.kept, result.rejected) == (1, 2)
        assert (by_line[2]["field"], by_line[3]["field"]) == ("question", "answer")
        assert second_reason in by_line[2]["reason"] and "is null" in by_line[3]["reason"]


def test_csv_bad_rows_and_lines(tmp_path):
    src = tmp_path / "qa.csv"
    src.write_text('question,answer\n"What is 1+1?","#### 2"\n"Too many",cells,here\n'
                   '"Multi\nline question?","#### 3"\n,"#### 4"\n')
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line = assert_counts_add_up(result)
    assert (result.read, result.kept, result.rejected) == (4, 2, 2)
    assert by_line[3]["field"] == "<row>" and "3 cells" in by_line[3]["reason"]
    assert by_line[6]["field"] == "question" and "is empty" in by_line[6]["reason"]
    assert [r["source"]["line"] for r in read_jsonl(result.out)] == [2, 4]


def test_duplicates_and_repeated_prompts(tmp_path):
    rows = [
        {"question": "Capital of Peru?", "answer": "Lima."},
        {"question": "Capital of Peru?", "answer": "Lima."},                    # identical: dropped, counted
        {"question": "Capital of Peru?", "answer": "It is Lima, on the coast."},  # same prompt: kept
        {"question": "Capital of Chile?", "answer": "Santiago."},
        {"question": "Capital of Peru?", "answer": "Lima."},                    # identical again
    ]
    src = write_jsonl(tmp_path / "caps.jsonl", rows)
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line = assert_counts_add_up(result)
    records = read_jsonl(result.out)
    assert (result.read, result.kept, result.duplicates) == (5, 3, 2)
    assert result.duplicate_ids == [records[0]["id"]]
    assert result.duplicate_prompts == 1
    assert result.duplicate_prompt_ids == [[records[0]["id"], records[1]["id"]]]
    assert set(by_line) == {2, 5} and "line 1" in by_line[2]["reason"]


def test_strict_exit_code_and_no_records(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", [GOOD, {"instruction": "No output."}])
    out = tmp_path / "out.jsonl"
    ok = run_cli(src, "--out", out)
    assert ok.exit_code == 0, ok.output
    assert "line 2, field 'output': missing" in ok.output
    assert len(read_jsonl(out)) == 1

    out.unlink()
    strict = run_cli(src, "--out", out, "--strict", "--rejects", tmp_path / "bad.jsonl")
    assert strict.exit_code == 2  # bad input (a rejected row), named by file and line
    assert "strict" in strict.output and "line 2" in strict.output and "a.jsonl" in strict.output
    assert not out.exists()  # strict failure writes no records ...
    assert [s["line"] for s in read_jsonl(tmp_path / "bad.jsonl")] == [2]  # ... but does write rejects

    # --strict with nothing rejected (filtered/duplicates do not count) succeeds
    clean = write_jsonl(tmp_path / "clean.jsonl", [GOOD, GOOD])
    assert run_cli(clean, "--out", out, "--strict").exit_code == 0


def test_nothing_usable_exits_non_zero_and_keeps_previous_output(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    src = tmp_path / "junk.jsonl"
    src.write_text("not json\n{also not\n")
    cli = run_cli(src, "--out", out)
    assert cli.exit_code == 1
    assert "none of the 2 rows could be used" in cli.output
    assert out.read_text() == "previous\n"  # atomic: a failed run leaves the old file alone
    assert len(read_jsonl(tmp_path / "out.rejects.jsonl")) == 2
