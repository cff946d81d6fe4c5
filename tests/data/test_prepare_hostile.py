"""Hostile input (issue 9): no row is lost, no row can stop the run.

Every input row ends up in the records or in the rejects file (with file, line and field),
whatever it holds: a CSV quote never closed, bytes that are not UTF-8, JSON nested too deep,
lone surrogates, NaN and infinities, integers too long to read, duplicate keys, non-object
rows; and nothing non-standard (NaN) or not UTF-8 is ever written.
"""

from __future__ import annotations

import gzip
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seapo.data import layouts
from seapo.data.prepare import PrepareError, prepare
from tests.data.helpers import run_cli

GOOD = [("What is 1+1?", "2."), ("What is 2+2?", "4."), ("What is 3+3?", "6.")]


def strict_json(text: str):
    """json.loads that refuses what standard JSON has not (NaN, Infinity)."""
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name} written")
    return json.loads(text, parse_constant=refuse)


def read_out(path):
    """Lines of an output file, each parsed as standard JSON from strict UTF-8."""
    if not path.exists():
        return []
    return [strict_json(line) for line in path.read_bytes().decode("utf-8").splitlines() if line.strip()]


def check_accounting(result, *, row_lines=None):
    """read == kept + rejected + filtered + duplicates; every entry names file, line, field;
    every input row's line is in the records or the rejects; outputs are standard JSON."""
    assert result.read == result.kept + result.rejected + result.filtered + result.duplicates
    skipped = read_out(result.rejects)
    assert len(skipped) == result.rejected + result.filtered + result.duplicates
    records = read_out(result.out) if result.written else []
    assert len(records) == (result.kept if result.written else 0)
    for s in skipped:
        assert s["file"] and isinstance(s["line"], int) and s["line"] >= 1
        assert s["field"] and s["reason"] and s["kind"] in ("rejected", "filtered", "duplicate")
    if row_lines is not None:
        seen = sorted([r["source"]["line"] for r in records] + [s["line"] for s in skipped])
        assert seen == sorted(row_lines)
    return {s["line"]: s for s in skipped}, records


# ---------------------------------------------------------------- CSV quoting


def test_csv_quote_never_closed_costs_its_row_not_the_rest(tmp_path):
    src = tmp_path / "q.csv"
    src.write_text('prompt,response\n"a,b\nc,d\ne,f\n')
    result = prepare(src, out=tmp_path / "q.jsonl")
    by_line, records = check_accounting(result, row_lines=[2, 3, 4])
    assert (result.read, result.kept, result.rejected) == (3, 2, 1)
    assert by_line[2]["field"] == "prompt" and by_line[2]["file"] == str(src)
    assert "never closed" in by_line[2]["reason"] and "lines 2-4" in by_line[2]["reason"]
    assert by_line[2]["raw"] == '"a,b'
    assert [(r["prompt"][0]["content"], r["response"]) for r in records] == [("c", "d"), ("e", "f")]

    cli = run_cli(src, "--out", tmp_path / "strict.jsonl", "--strict")
    assert cli.exit_code == 2, cli.output  # bad input, named by file and line
    assert "q.csv" in cli.output and "line 2" in cli.output and "never closed" in cli.output
    assert not (tmp_path / "strict.jsonl").exists()


def test_csv_quote_never_closed_in_a_later_field_and_a_quoted_row_before_it(tmp_path):
    src = tmp_path / "q.csv"
    src.write_text('prompt,response\n"multi\nline",ok\nfine,"broken\nnext,row\n')
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line, records = check_accounting(result, row_lines=[2, 4, 5])
    assert by_line[4]["field"] == "response" and "never closed" in by_line[4]["reason"]
    assert [r["source"]["line"] for r in records] == [2, 5]
    assert records[0]["prompt"][0]["content"] == "multi\nline"


def test_csv_text_after_a_closing_quote_is_rejected_not_mangled(tmp_path):
    src = tmp_path / "q.csv"
    # '"a"b' is not CSV: the csv module's lenient mode silently reads it as 'ab'
    src.write_text('prompt,response\n"a"b,c\nq,r\n"x,y\nz,w\n"late" quote,v\nlast,one\n')
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line, records = check_accounting(result, row_lines=[2, 3, 4, 5, 6, 7])
    assert by_line[2]["field"] == "prompt" and "after the closing quote" in by_line[2]["reason"]
    # the quote opened at line 4 is closed at line 6 by a quote followed by text: line 4 is
    # rejected and the lines it took in are read again
    assert by_line[4]["field"] == "prompt" and "read again" in by_line[4]["reason"]
    assert by_line[6]["field"] == "prompt"
    assert [r["source"]["line"] for r in records] == [3, 5, 7]


def test_csv_many_unclosed_quotes_stay_linear(tmp_path):
    src = tmp_path / "q.csv"
    src.write_text("prompt,response\n" + '"p,r\n' * 3000 + "ok,fine\n")
    result = prepare(src, out=tmp_path / "out.jsonl")
    check_accounting(result, row_lines=list(range(2, 3003)))
    assert (result.kept, result.rejected) == (1, 3000)


def test_csv_multiline_row_rejects_name_the_line_range(tmp_path):
    src = tmp_path / "q.csv"
    src.write_text('prompt,response\n"one\ntwo\nthree",r,extra\nok,fine\n')
    result = prepare(src, out=tmp_path / "out.jsonl")
    skipped = read_out(result.rejects)
    assert [(s["line"], s["end_line"]) for s in skipped] == [(2, 4)]
    assert "3 cells" in skipped[0]["reason"]
    assert result.examples[0]["end_line"] == 4


def test_csv_old_mac_line_endings(tmp_path):
    src = tmp_path / "mac.csv"
    src.write_bytes(b"prompt,response\rq1,r1\rq2,r2\r")
    result = prepare(src, out=tmp_path / "out.jsonl")
    assert (result.read, result.kept) == (2, 2)


# ---------------------------------------------------------------- bytes


def test_csv_bad_byte_costs_only_its_row(tmp_path):
    src = tmp_path / "b.csv"
    src.write_bytes(b'prompt,response\nq1,r1\nq\xff2,r2\n"multi\nline \xfe",r3\nq4,r4\r\n')
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line, records = check_accounting(result, row_lines=[2, 3, 4, 6])
    assert (result.kept, result.rejected) == (2, 2)
    assert by_line[3]["field"] == "prompt" and "not valid UTF-8" in by_line[3]["reason"]
    assert "0xff" in by_line[3]["reason"] and by_line[3]["raw"] == "q\ufffd2,r2"
    assert by_line[4]["field"] == "prompt" and by_line[4]["end_line"] == 5 and "line 5" in by_line[4]["reason"]
    assert records[1]["response"] == "r4"


def test_json_array_bad_byte_costs_only_its_element(tmp_path):
    src = tmp_path / "a.json"
    src.write_bytes(b'[{"question": "q1", "answer": "a1"},\n {"question": "q\xff", "answer": "a2"},\n'
                    b' {"question": "q3", "answer": "a3"}]')
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line, _ = check_accounting(result, row_lines=[1, 2, 3])
    assert (result.kept, result.rejected) == (2, 1) and "UTF-8" in by_line[2]["reason"]


def test_gzip_text_files_are_read_and_a_truncated_one_keeps_what_it_has(tmp_path):
    rows = "".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in GOOD * 400)
    for name in ("d.jsonl.gz", "d.jsonl"):  # by suffix, or by content under a plain name
        src = tmp_path / name
        src.write_bytes(gzip.compress(rows.encode()))
        result = prepare(src, out=tmp_path / f"{name}.out.jsonl")
        assert (result.read, result.kept, result.duplicates) == (1200, 3, 1197)
    csv_src = tmp_path / "d.csv.gz"
    csv_src.write_bytes(gzip.compress(b"question,answer\nq,a\n"))
    assert prepare(csv_src, out=tmp_path / "c.jsonl").kept == 1

    truncated = tmp_path / "t.jsonl.gz"
    truncated.write_bytes(gzip.compress(rows.encode())[:-200])
    result = prepare(truncated, out=tmp_path / "t.jsonl")
    by_line, _ = check_accounting(result)
    assert result.kept == 3 and result.rejected == 1
    (broken,) = [s for s in by_line.values() if s["kind"] == "rejected"]
    assert "truncated or corrupt" in broken["reason"] and "rest of the file" in broken["reason"]
    with pytest.raises(PrepareError, match="t.jsonl.gz"):
        prepare(truncated, out=tmp_path / "t2.jsonl", strict=True)


# ---------------------------------------------------------------- JSON values


def hostile_json_rows():
    """(text of one JSON line, expected field or None when kept, expected reason part)."""
    deep = "[" * 100_000 + "]" * 100_000
    return [
        ('{"question": "q1", "answer": "a1"}', None, None),
        ('{"question": "q2", "answer": "a2", "extra": ' + deep + "}", "<row>", "nested too deeply"),
        ('{"question": "q3 \\ud800", "answer": "a3"}', "question", "lone surrogate"),
        ('{"question": "q4", "answer": "a4", "meta": {"k\\udfff": 1}}', "meta.k\\udfff", "lone surrogate"),
        ('{"question": "q5", "answer": "a5", "score": NaN}', "score", "NaN"),
        ('{"question": "q6", "answer": "a6", "s": [1, Infinity]}', "s[1]", "Infinity"),
        ('{"question": "q7", "answer": "a7", "s": -Infinity}', "s", "-Infinity"),
        ('{"question": "q8", "answer": "a8", "s": 1e400}', "s", "out of range"),
        ('{"question": "q9", "answer": "a9", "n": ' + "7" * 100_000 + "}", "n", "100000 digits"),
        ('{"question": "q10", "answer": "a10", "answer": "other"}', "answer", "duplicate key 'answer'"),
        ('{"question": "q11", "answer": "a11", "m": [{"x": 1, "x": 2}]}', "m[0].x", "duplicate key 'x'"),
        ("null", "<row>", "expected an object"),
        ('["a", "list"]', "<row>", "expected an object"),
        ("42", "<row>", "expected an object"),
        ('"text"', "<row>", "expected an object"),
        ('{"question": "q16", "answer": 16}', "answer", "expected text, got number"),
        ('{"question": {"nested": "q"}, "answer": "a17"}', "question", "expected text, got object"),
        ('{"question": "q18 \\u0000 nul", "answer": "a18"}', None, None),  # escaped NUL: valid text
        ('{"question": "q19 \\ud83d\\ude00", "answer": "a19"}', None, None),  # a valid surrogate pair
        ('{"question": "q20", "answer": "a20"} trailing', "<row>", "extra data"),
        ('{"question": "q21", "answer": "a21", "big": 1e308, "small": -0.0}', None, None),
    ]


def test_hostile_json_lines_each_cost_one_row(tmp_path):
    cases = hostile_json_rows()
    src = tmp_path / "h.jsonl"
    # a BOM on the first line and on a later one (concatenated files), CRLF endings
    body = "\r\n".join(text for text, _, _ in cases)
    src.write_bytes(b"\xef\xbb\xbf" + body.encode() + b"\r\n\xef\xbb\xbf" + b'{"question": "q22", "answer": "a22"}\r\n')
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line, records = check_accounting(result, row_lines=list(range(1, len(cases) + 2)))
    for line, (_, field, reason) in enumerate(cases, start=1):
        if field is None:
            assert line not in by_line, by_line[line]
        else:
            assert by_line[line]["field"] == field, by_line[line]
            assert reason in by_line[line]["reason"], by_line[line]
            assert by_line[line]["file"] == str(src)
    kept = {r["source"]["line"] for r in records}
    assert kept == {1, 18, 19, 21, len(cases) + 1}
    assert any(r["prompt"][0]["content"] == "q19 \U0001f600" for r in records)
    # the rejects keep the row's text, even where the parsed row could not be written
    assert by_line[3]["raw"] == cases[2][0] and by_line[5]["raw"] == cases[4][0]


def test_hostile_json_array_elements_each_cost_one_element(tmp_path):
    cases = [(t, f, r) for t, f, r in hostile_json_rows() if r != "extra data"]
    src = tmp_path / "h.json"
    src.write_text("[\n" + ",\n".join(text for text, _, _ in cases) + ',\n{"question": "qx", "answer": tru},'
                   '\n{"question": "qy", "answer": "ay"}\n]\n')
    result = prepare(src, out=tmp_path / "out.jsonl")
    n = len(cases)
    by_line, records = check_accounting(result, row_lines=list(range(1, n + 3)))
    for index, (_, field, reason) in enumerate(cases, start=1):
        if field is None:
            assert index not in by_line, by_line[index]
        else:
            assert (by_line[index]["field"], reason in by_line[index]["reason"]) == (field, True), by_line[index]
    assert "malformed JSON" in by_line[n + 1]["reason"] and "line" in by_line[n + 1]["reason"]
    assert records[-1]["response"] == "ay"


def test_json_single_object_with_a_duplicate_key(tmp_path):
    src = tmp_path / "one.json"
    src.write_text('{\n  "question": "q",\n  "answer": "a",\n  "answer": "b"\n}\n')
    with pytest.raises(PrepareError) as excinfo:
        prepare(src, out=tmp_path / "out.jsonl")
    result = excinfo.value.result
    assert (result.read, result.rejected) == (1, 1)
    assert result.examples[0]["field"] == "answer" and "duplicate" in result.examples[0]["reason"]


def test_json_array_missing_and_trailing_commas(tmp_path):
    src = tmp_path / "c.json"
    src.write_text('[{"question": "q1", "answer": "a1"}\n {"question": "q2", "answer": "a2"},\n'
                   ' {"question": "q3", "answer": "a3"},\n]')
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line, _ = check_accounting(result, row_lines=[1, 2, 3])
    assert (result.kept, result.rejected) == (2, 1) and "no ','" in by_line[2]["reason"]


def test_json_array_that_never_closes_is_a_clear_file_error(tmp_path):
    src = tmp_path / "t.json"
    src.write_text('[{"question": "q", "answer": "a"}, {"question": "r", "answ')
    cli = run_cli(src, "--out", tmp_path / "out.jsonl")
    assert cli.exit_code == 2 and "t.json" in cli.output and "Traceback" not in cli.output


# ---------------------------------------------------------------- any failure on one row


def test_an_unexpected_error_on_one_row_rejects_that_row(tmp_path, monkeypatch):
    gsm8k = layouts.LAYOUTS["gsm8k"]

    def convert(row, opts):
        if row["question"] == "boom":
            raise TypeError("unexpected")
        return gsm8k.convert(row, opts)

    monkeypatch.setitem(layouts.LAYOUTS, "gsm8k", layouts.Layout("gsm8k", gsm8k.description, convert,
                                                                 gsm8k.matches))
    src = tmp_path / "g.jsonl"
    src.write_text('{"question": "q", "answer": "a"}\n{"question": "boom", "answer": "a"}\n')
    result = prepare(src, out=tmp_path / "out.jsonl", format="gsm8k")
    by_line, _ = check_accounting(result, row_lines=[1, 2])
    assert "TypeError: unexpected" in by_line[2]["reason"]


def test_nan_from_parquet_is_never_written(tmp_path):
    src = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"question": "q1", "answer": "a1", "score": math.nan},
        {"question": "", "answer": "a2", "score": math.inf},  # rejected: its raw row has inf
        {"question": "q3", "answer": "a3", "score": 1.5},
    ]), src)
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line, _ = check_accounting(result, row_lines=[1, 2, 3])
    assert by_line[2]["raw"]["score"] == "inf"


# ---------------------------------------------------------------- all of it, every format


def nasty_rows():
    """Rows as Python values for the formats that hold values (json, jsonl, parquet): good,
    bad by layout, duplicate; plus per-format hostile text added by each writer."""
    return [
        {"question": "q1", "answer": "a1"},
        {"question": "q2", "answer": ""},
        {"question": "q1", "answer": "a1"},
        {"question": "q4", "answer": "a4"},
    ]


def write_nasty(tmp_path, kind):
    """A file of the given kind mixing everything; returns (path, number of input rows, their lines)."""
    rows = nasty_rows()
    hostile = ['{"question": "x", "answer": "y", "n": NaN}', '{"question": "x\\ud800", "answer": "y"}',
               '{"question": "x", "answer": "y", "answer": "z"}', "[" * 50_000 + "]" * 50_000,
               '{"question": "x", "answer": "y", "i": ' + "9" * 50_000 + "}", "null",
               '{"question": "x", "answer": 1e999}']
    if kind in ("jsonl", "jsonl.gz"):
        data = ("\n".join(json.dumps(r) for r in rows) + "\n" + "\n".join(hostile) + "\n").encode()
        data += b'{"question": "\xff", "answer": "y"}\n{"broken\n'
        path = tmp_path / f"n.{kind}"
        path.write_bytes(gzip.compress(data) if kind.endswith(".gz") else data)
        n = len(rows) + len(hostile) + 2
        return path, n, list(range(1, n + 1))
    if kind == "json":
        path = tmp_path / "n.json"
        path.write_bytes(("[" + ",\n".join([json.dumps(r) for r in rows] + hostile) + ",\n").encode()
                         + b'{"question": "\xff", "answer": "y"},\n{"question": bad}]')
        n = len(rows) + len(hostile) + 2
        return path, n, list(range(1, n + 1))
    if kind in ("csv", "csv.gz"):
        data = b'question,answer\nq1,a1\nq2,\nq1,a1\n"q4\nspans lines",a4\nonly one cell\n' \
               b'"a"b,c\n\xff\xfe,bad bytes\nq9,"nul \x00 inside"\n"never closed,x\nq11,a11\n'
        path = tmp_path / f"n.{kind}"
        path.write_bytes(gzip.compress(data) if kind.endswith(".gz") else data)
        return path, 10, [2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    path = tmp_path / "n.parquet"
    pq.write_table(pa.Table.from_pylist([{**r, "score": math.nan} for r in rows]
                                        + [{"question": None, "answer": "y", "score": math.inf}]), path)
    return path, len(rows) + 1, list(range(1, len(rows) + 2))


@pytest.mark.parametrize("kind", ["jsonl", "jsonl.gz", "json", "csv", "csv.gz", "parquet"])
def test_every_row_is_kept_or_in_the_rejects(tmp_path, kind):
    src, n, lines = write_nasty(tmp_path, kind)
    result = prepare(src, out=tmp_path / "out.jsonl", format="gsm8k")
    assert result.read == n
    _, records = check_accounting(result, row_lines=lines)
    assert result.kept >= 2 and result.duplicates == 1 and result.rejected == n - result.kept - 1
    with pytest.raises(PrepareError) as excinfo:
        prepare(src, out=tmp_path / "strict.jsonl", format="gsm8k", strict=True)
    assert excinfo.value.exit_code == 2 and str(src) in str(excinfo.value)
    assert excinfo.value.line == excinfo.value.result.examples[0]["line"]
    assert not (tmp_path / "strict.jsonl").exists()


def test_csv_long_swallowed_span_then_more_rows(tmp_path):
    """A stray quote that swallows more than 10,000 lines before failing: the lines are read
    again one at a time, and the file's later lines are still read."""
    n = 10_005
    src = tmp_path / "q.csv"
    src.write_text("prompt,response\n" + '"stray\n' + "".join(f"q{i},r{i}\n" for i in range(n))
                   + '"y"z,w\nafter,row\n')
    result = prepare(src, out=tmp_path / "out.jsonl")
    by_line, records = check_accounting(result, row_lines=list(range(2, n + 5)))
    assert (result.kept, result.rejected) == (n + 1, 2)
    assert set(by_line) == {2, n + 3} and records[-1]["response"] == "row"
