"""Readers: turn a source (local file or Hub dataset) into numbered raw rows.

Every reader yields :class:`RawRow` objects, one per input row, in order. A row that
cannot be read (malformed JSON, a duplicate key, NaN, a lone surrogate, nesting too deep,
a CSV quote never closed, a CSV row with the wrong number of cells, bytes that are not
UTF-8) is still yielded, with ``row=None``, the reason in ``error`` and the field in
``field``, so the caller can put it in the rejects file instead of losing it; a file that
cannot be read past some point (a truncated gzip, a broken Parquet page) ends with one such
row. Only a failure of the whole file (missing, unreadable, not the declared container
format, a JSON array whose brackets do not close) raises :class:`~seapo.errors.InputError`.
"""

from __future__ import annotations

import csv
import math
import re
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seapo.data.parsing import (
    ROW,
    BrokenStream,
    JsonRowParser,
    Line,
    decode_error,
    json_value_end,
    locate_csv_problem,
    open_binary,
    physical_lines,
    safe_text,
)
from seapo.errors import InputError

LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")
"""File name endings read as local files (the text formats also with ``.gz`` after them)."""

TEXT_SUFFIXES = (".json", ".jsonl", ".csv")
"""The local formats read as text: gzip-compressed too (``.jsonl.gz``, or detected by content)."""

# A Hub id is ``name`` or ``owner/name`` made of letters, digits, ``-``, ``_`` and ``.``.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

_BOM = "\ufeff"


@dataclass
class RawRow:
    """One input row before any layout is applied."""

    line: int
    """1-based line of the row in the file (jsonl, csv) or index + 1 (json arrays, parquet, Hub)."""
    row: Any
    """The parsed row (normally a dict); ``None`` when it could not be parsed."""
    error: str | None = None
    """Why the row could not be read (then ``row`` is None and ``raw`` holds the text)."""
    raw: Any = None
    """The text of the row as read (always for a row that failed to parse; also for JSON rows,
    as a fallback when the parsed row cannot be written back)."""
    position: int = 0
    """How far into the source this row ends, in the unit of :attr:`Source.total` (progress)."""
    field: str = ROW
    """The field :attr:`error` is about (``<row>`` for the whole row)."""
    end_line: int | None = None
    """The last line of a row that spans several lines (a CSV row with a multi-line cell)."""


@dataclass
class Source:
    """An opened source: a row iterator plus what the records' ``source`` metadata needs."""

    rows: Iterator[RawRow]
    """The rows, in order."""
    dataset: str
    """Name recorded as ``source.dataset`` in each record."""
    kind: str
    """``jsonl``, ``json``, ``csv``, ``parquet`` or ``hub``."""
    total: int | None = None
    """Size for the progress bar, in ``unit``s (None when unknown)."""
    unit: str = "rows"
    """``bytes`` or ``rows``."""
    location: str | None = None
    """The file (or Hub id) read, named in the rejects (``file``) and in errors."""


def looks_like_hub_id(text: str) -> bool:
    """True for ``owner/name`` or ``name`` strings that are not local file names."""
    return bool(_HUB_ID.match(text)) and not is_local_name(text)


def is_local_name(text: str) -> bool:
    """True for names ending in a local file suffix (``.csv``, ``.jsonl.gz``, ...)."""
    lower = text.lower()
    return lower.endswith(LOCAL_SUFFIXES) or lower.endswith(tuple(f"{s}.gz" for s in TEXT_SUFFIXES))


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and suffixes[-2] in TEXT_SUFFIXES:
        return suffixes[-2]
    return path.suffix.lower()


def open_local(path: Path, dataset: str | None = None) -> Source:
    """Open a local ``.json``/``.jsonl``/``.parquet``/``.csv`` file (chosen by its suffix; the
    text formats may be gzip-compressed)."""
    suffix = _suffix(path)
    if suffix not in LOCAL_SUFFIXES:
        raise InputError(f"unsupported file type '{suffix or path.name}'; expected one of "
                         f"{', '.join(LOCAL_SUFFIXES)} (the text ones also as .gz)", path=str(path))
    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "not a file", path=str(path))
    name = dataset or safe_text(str(path))  # a file name need not be UTF-8; records must be
    size = path.stat().st_size
    if suffix == ".jsonl":
        return Source(_read_jsonl(path), name, "jsonl", total=size, unit="bytes", location=safe_text(str(path)))
    if suffix == ".csv":
        return Source(_read_csv(path), name, "csv", total=size, unit="bytes", location=safe_text(str(path)))
    if suffix == ".parquet":
        return _open_parquet(path, name)
    return _open_json(path, name)


def _lines(path: Path, *, split_cr: bool = False) -> Iterator[Line]:
    """The file's physical lines; a read failure midway ends them with a :class:`BrokenStream`."""
    stream, raw = open_binary(path)
    with raw, stream:
        yield from physical_lines(stream, raw, split_cr=split_cr)


def _broken(exc: BrokenStream, position: int) -> RawRow:
    """The row standing for the unreadable rest of a file."""
    return RawRow(exc.after + 1, None, f"{exc.reason}; the rest of the file could not be read",
                  raw=None, position=position)


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    """JSON lines: one value per non-blank line; a line that cannot be used becomes an error row."""
    parser = JsonRowParser()
    position = 0
    lines = _lines(path)
    try:
        for line in lines:
            position = line.position
            try:
                text = line.data.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RawRow(line.number, None, decode_error(exc, line.data, line.number),
                             raw=line.data.decode("utf-8", "replace").rstrip("\r\n"), position=position)
                continue
            text = text.removeprefix(_BOM)  # written by some editors (also inside concatenated files)
            if not text.strip():
                continue  # blank lines are layout, not rows
            value, _, problem = parser.parse(text)
            stripped = text.rstrip("\r\n")
            if problem is not None:
                yield RawRow(line.number, None, problem[1], raw=stripped, position=position, field=problem[0])
            else:
                yield RawRow(line.number, value, raw=stripped, position=position)
    except BrokenStream as exc:
        yield _broken(exc, position)


def _open_json(path: Path, name: str) -> Source:
    """A ``.json`` file holds either one JSON array of rows, one object, or JSON lines."""
    stream, raw = open_binary(path)
    try:
        with raw, stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read file: {exc}", path=str(path)) from exc
    try:
        text, bad_bytes = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, bad_bytes = data.decode("utf-8", "surrogateescape"), True
    text = text.removeprefix(_BOM)
    stripped = text.lstrip()
    where = safe_text(str(path))
    if stripped.startswith("["):
        rows = _json_array(text, path, bad_bytes)
        return Source(iter(rows), name, "json", total=len(rows), unit="rows", location=where)
    if stripped.startswith("{"):
        # One object per line (JSON lines in a .json file), or one (pretty-printed) object
        if not bad_bytes:
            value, _, problem = JsonRowParser().parse(text)
            if problem is None and isinstance(value, dict):
                return Source(iter([RawRow(1, value, position=len(data))]), name, "json",
                              total=len(data), unit="bytes", location=where)
            if problem is not None and not problem[1].startswith(("malformed JSON", "nested too deeply")):
                # one object that parses but must be rejected (a duplicate key, NaN, ...)
                return Source(iter([RawRow(1, None, problem[1], raw=safe_text(text.strip()), position=len(data),
                                           field=problem[0])]), name, "json",
                              total=len(data), unit="bytes", location=where)
        return Source(_read_jsonl(path), name, "jsonl", total=len(data), unit="bytes", location=where)
    if not stripped:
        return Source(iter(()), name, "json", total=0, unit="rows", location=where)
    what = "not UTF-8 text" if bad_bytes else "not JSON"
    raise InputError(f"{what}: expected a JSON array of objects or one JSON object per line",
                     path=str(path))


def _json_array(text: str, path: Path, bad_bytes: bool) -> list[RawRow]:
    """The elements of a JSON array, each parsed on its own: an element that cannot be used
    becomes an error row; only a broken array structure fails the file."""
    parser = JsonRowParser()
    rows: list[RawRow] = []

    def where(index: int) -> str:
        line = text.count("\n", 0, index) + 1
        return f"line {line} column {index - text.rfind(chr(10), 0, index)}"

    def broken(index: int, what: str) -> InputError:
        return InputError(f"not valid JSON: {what} at {where(index)}", path=str(path))

    index = _skip_space(text, text.index("[") + 1)
    missing_comma = False
    if text.startswith("]", index):
        index += 1
    else:
        while True:
            number = len(rows) + 1
            value, end, problem = parser.parse(text, index, whole=False)
            if end < 0:  # could not parse: find the element's end by its brackets, reject it
                end = json_value_end(text, index)
                if end is None:
                    raise broken(index, f"array element {number} cannot be read ({problem[1]})")
            element = text[index:end].strip()
            if bad_bytes and not _encodable(element):
                problem = (ROW, "not valid UTF-8 (bytes that are not UTF-8 text in this element)")
            if missing_comma:
                problem, missing_comma = (ROW, "malformed JSON: no ',' between this element and the one before"), False
            if problem is not None:
                rows.append(RawRow(number, None, f"{problem[1]} (element at {where(index)})",
                                   raw=safe_text(element, undecoded=bad_bytes), position=number,
                                   field=problem[0]))
            else:
                rows.append(RawRow(number, value, position=number))
            index = _skip_space(text, end)
            if text.startswith(",", index):
                index = _skip_space(text, index + 1)
                if text.startswith("]", index):  # a trailing comma holds no row
                    index += 1
                    break
                continue
            if text.startswith("]", index):
                index += 1
                break
            if index >= len(text):
                raise broken(index, "the array is not closed (is the file truncated?)")
            missing_comma = True  # the next element is read, and rejected, as if the comma were there
            continue
    if _skip_space(text, index) != len(text):
        raise broken(_skip_space(text, index), "extra data after the array")
    return rows


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _encodable(text: str) -> bool:
    return safe_text(text) is text


def _read_csv(path: Path) -> Iterator[RawRow]:
    """CSV with a header row; ``line`` is the line where the data row starts.

    Read in strict mode, from lines decoded one by one. A row that breaks the quoting rules
    is rejected naming its first line and field; when a quote is never closed, the lines it
    would have swallowed are read again as rows of their own (so one stray quote costs one
    row, not the rest of the file). Bytes that are not UTF-8 cost the row they are in."""
    lines = _lines(path, split_cr=True)
    position = 0
    bad_lines: dict[int, str] = {}
    pending: deque[tuple[int, str]] = deque()  # lines to read (again) before the file's next ones
    current: list[tuple[int, str]] = []        # the lines of the record being read
    broken: BrokenStream | None = None

    def next_line() -> tuple[int, str] | None:
        """The next line to read: one put back, else the file's next (None at the end)."""
        nonlocal position, broken
        if pending:
            return pending.popleft()
        if broken is not None:
            return None
        try:
            line = next(lines)
        except StopIteration:
            return None
        except BrokenStream as exc:
            broken = exc
            return None
        position = line.position
        try:
            text = line.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_lines[line.number] = decode_error(exc, line.data, line.number)
            text = line.data.decode("utf-8", "surrogateescape")  # keeps the row's structure
        if line.number == 1:
            text = text.removeprefix(_BOM)
        return line.number, text

    ended = False  # feed() has run out: the csv reader will not read anything more

    def feed() -> Iterator[str]:
        nonlocal ended
        while (item := next_line()) is not None:
            current.append(item)
            yield item[1]
        ended = True

    # Long responses easily pass csv's default 128 KiB cell limit; raise it (process-wide).
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    reader = csv.reader(feed(), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"not readable as CSV: {exc}", path=str(path), line=1) from exc
    if header is None:
        if broken is not None:
            yield _broken(broken, position)
        return
    for number, _ in current:
        if number in bad_lines:
            raise InputError(f"bad CSV header: {bad_lines[number]}", path=str(path), line=number)
    header = [h.strip() for h in header]
    if len(set(header)) != len(header) or not all(header):
        raise InputError(f"bad CSV header {header}: column names must be unique and non-empty",
                         path=str(path), line=1)
    one_line_at_a_time = False  # after a quote that never closes: no multi-line rows any more
    reread = 0
    while True:
        current.clear()
        try:
            if one_line_at_a_time:
                item = next_line()
                if item is None:
                    break
                current.append(item)
                cells = next(csv.reader([item[1]], strict=True), [])
            else:
                cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if not current:  # nothing read: the error is not about a row
                raise InputError(f"not readable as CSV: {exc}", path=str(path)) from exc
            first = current[0][0]
            found = locate_csv_problem(current, header)
            field_name, reason = (found[0], found[2]) if found else (ROW, f"not readable as CSV: {exc}")
            if len(current) > 1:
                again = f"lines {current[1][0]}-{current[-1][0]} are" if len(current) > 2 \
                    else f"line {current[1][0]} is"
                reason += f"; {again} read again as rows of their own"
                rest = current[1:]
                reread += len(rest)
                if ended or reread > 10_000 + first:
                    one_line_at_a_time = True  # the quote swallowed everything to the end (or too much)
                pending.extendleft(reversed(rest))
            yield RawRow(first, None, reason, raw=_raw_lines(current[:1]), position=position,
                         field=field_name)
            continue
        first, last = current[0][0], current[-1][0]
        end_line = last if last > first else None
        bad = next((number for number, _ in current if number in bad_lines), None)
        if not cells:
            continue  # a blank line
        if bad is not None:
            field_name = next((header[i] if i < len(header) else ROW for i, cell in enumerate(cells)
                               if not _encodable(cell)), ROW)
            yield RawRow(first, None, f"{bad_lines[bad]} (line {bad})", raw=_raw_lines(current),
                         position=position, field=field_name, end_line=end_line)
            continue
        if len(cells) != len(header):
            yield RawRow(first, None, f"has {len(cells)} cells, the header has {len(header)}",
                         raw=cells, position=position, end_line=end_line)
            continue
        yield RawRow(first, dict(zip(header, cells, strict=True)), position=position, end_line=end_line)
    if broken is not None:
        yield _broken(broken, position)


def _raw_lines(lines: list[tuple[int, str]]) -> str:
    """The text of some lines as read; bytes that were not UTF-8 shown as U+FFFD."""
    return safe_text("".join(text for _, text in lines).rstrip("\r\n"), undecoded=True)


def _open_parquet(path: Path, name: str) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", path=str(path)) from exc

    def rows() -> Iterator[RawRow]:
        index = 0
        try:
            for batch in table.iter_batches(batch_size=1024):
                for row in batch.to_pylist():
                    index += 1
                    yield RawRow(index, row, position=index)
        except (pa.ArrowException, OSError) as exc:
            # the rows before are kept; the rest of the file is one rejected row that says so
            left = table.metadata.num_rows - index
            yield RawRow(index + 1, None, f"Parquet file broken after row {index}: {exc}; the remaining "
                                          f"{left} rows could not be read", position=index + 1)

    return Source(rows(), name, "parquet", total=table.metadata.num_rows, unit="rows", location=safe_text(str(path)))


def open_hub(dataset: str, *, split: str, subset: str | None = None,
             data_files: str | list[str] | None = None, cache_dir: str | None = None,
             name: str | None = None) -> Source:
    """Load ``dataset`` (a Hub id, or a packaged builder such as ``parquet`` with
    ``data_files``) through :func:`datasets.load_dataset` and number its rows from 1."""
    import datasets

    try:
        ds = datasets.load_dataset(dataset, subset, split=split, data_files=data_files,
                                   cache_dir=cache_dir)
    except Exception as exc:  # the datasets library raises many types (network, config, split)
        hint = " (no network or offline mode: use a local file, or 'demo')" \
            if isinstance(exc, ConnectionError) else ""
        raise InputError(f"cannot load dataset split '{split}': {type(exc).__name__}: {exc}{hint}",
                         path=dataset) from exc

    def rows() -> Iterator[RawRow]:
        index = 0
        try:
            for row in ds:
                index += 1
                yield RawRow(index, row, position=index)
        except Exception as exc:  # a broken shard or cast: keep the rows before, report the rest
            yield RawRow(index + 1, None, f"the data set could not be read past row {index}: "
                                          f"{type(exc).__name__}: {exc}; the remaining {len(ds) - index} rows "
                                          "could not be read", position=index + 1)

    return Source(rows(), name or dataset, "hub", total=len(ds), unit="rows", location=dataset)


def to_jsonable(value: Any) -> Any:
    """Make a raw row safe for ``json.dumps`` (bytes, dates, numpy scalars from Parquet; NaN and
    infinities become the text ``nan``/``inf``, as standard JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_jsonable(value.tolist())
    return str(value)


__all__ = ["RawRow", "Source", "open_local", "open_hub", "looks_like_hub_id", "is_local_name", "to_jsonable",
           "LOCAL_SUFFIXES", "TEXT_SUFFIXES"]
