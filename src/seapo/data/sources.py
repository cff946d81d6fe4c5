"""Readers: turn a source (local file or Hub dataset) into numbered raw rows.

Every reader yields :class:`RawRow` objects, one per input row, in order. A row that
cannot even be parsed (a malformed JSON line, a CSV row with the wrong number of
cells, bytes that are not UTF-8) is still yielded, with ``row=None`` and the reason in
``error``, so the caller can put it in the rejects file instead of losing it. Only a
failure of the whole file (missing, unreadable, not the declared container format)
raises :class:`~seapo.errors.InputError`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seapo.errors import InputError

LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")
"""File name endings read as local files."""

# A Hub id is ``name`` or ``owner/name`` made of letters, digits, ``-``, ``_`` and ``.``.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass
class RawRow:
    """One input row before any layout is applied."""

    line: int
    """1-based line of the row in the file (jsonl, csv) or index + 1 (json arrays, parquet, Hub)."""
    row: Any
    """The parsed row (normally a dict); ``None`` when it could not be parsed."""
    error: str | None = None
    """Why the row could not be parsed (then ``row`` is None and ``raw`` holds the text)."""
    raw: Any = None
    """The unparsed text of a row that failed to parse."""
    position: int = 0
    """How far into the source this row ends, in the unit of :attr:`Source.total` (progress)."""


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


def looks_like_hub_id(text: str) -> bool:
    """True for ``owner/name`` or ``name`` strings that are not local file names."""
    return bool(_HUB_ID.match(text)) and not text.lower().endswith(LOCAL_SUFFIXES)


def open_local(path: Path, dataset: str | None = None) -> Source:
    """Open a local ``.json``/``.jsonl``/``.parquet``/``.csv`` file (chosen by its suffix)."""
    suffix = path.suffix.lower()
    if suffix not in LOCAL_SUFFIXES:
        raise InputError(f"unsupported file type '{suffix or path.name}'; expected one of "
                         f"{', '.join(LOCAL_SUFFIXES)}", path=str(path))
    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "not a file", path=str(path))
    name = dataset or str(path)
    size = path.stat().st_size
    if suffix == ".jsonl":
        return Source(_read_jsonl(path), name, "jsonl", total=size, unit="bytes")
    if suffix == ".csv":
        return Source(_read_csv(path), name, "csv", total=size, unit="bytes")
    if suffix == ".parquet":
        return _open_parquet(path, name)
    return _open_json(path, name)


def _decode(data: bytes, path: Path, line: int) -> str:
    text = data.decode("utf-8")
    return text.removeprefix("\ufeff") if line == 1 else text  # BOM written by some editors


def _read_jsonl(path: Path, start: int = 0) -> Iterator[RawRow]:
    """JSON lines: one object per non-blank line; bad lines become error rows."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - bytes, so one bad byte only costs one line
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
    with f:
        position = start
        for number, data in enumerate(f, start=1):
            position += len(data)
            try:
                text = _decode(data, path, number)
            except UnicodeDecodeError as exc:
                yield RawRow(number, None, f"not valid UTF-8: {exc.reason} at byte {exc.start}",
                             raw=data.decode("utf-8", "replace").rstrip("\r\n"), position=position)
                continue
            if not text.strip():
                continue  # blank lines are layout, not rows
            try:
                yield RawRow(number, json.loads(text), position=position)
            except json.JSONDecodeError as exc:
                yield RawRow(number, None, f"malformed JSON: {exc.msg} (column {exc.colno})",
                             raw=text.rstrip("\r\n"), position=position)


def _open_json(path: Path, name: str) -> Source:
    """A ``.json`` file holds either one JSON array of rows or JSON lines."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        text = None
    stripped = text.lstrip() if text is not None else ""
    if text is not None and stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                             path=str(path)) from exc

        def array_rows() -> Iterator[RawRow]:
            for index, row in enumerate(rows):
                yield RawRow(index + 1, row, position=index + 1)

        return Source(array_rows(), name, "json", total=len(rows), unit="rows")
    if text is not None and stripped.startswith("{"):
        # One object per line (JSON lines in a .json file). A pretty-printed single
        # object would fail line by line, so parse it whole first.
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            return Source(iter([RawRow(1, whole, position=len(data))]), name, "json",
                          total=len(data), unit="bytes")
        return Source(_read_jsonl(path), name, "jsonl", total=len(data), unit="bytes")
    if text is not None and not stripped:
        return Source(iter(()), name, "json", total=0, unit="rows")
    if text is None and data.lstrip().startswith(b"{"):
        # JSON lines with some bad bytes: read line by line so only those lines are rejected
        return Source(_read_jsonl(path), name, "jsonl", total=len(data), unit="bytes")
    what = "not UTF-8 text" if text is None else "not JSON"
    raise InputError(f"{what}: expected a JSON array of objects or one JSON object per line",
                     path=str(path))


def _read_csv(path: Path) -> Iterator[RawRow]:
    """CSV with a header row; ``line`` is the line where the data row starts."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - bytes, to count progress
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for number, data in enumerate(f, start=1):
            consumed += len(data)
            try:
                yield _decode(data, path, number)
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text: {exc.reason}", path=str(path), line=number) from exc

    # Long responses easily pass csv's default 128 KiB cell limit; raise it (process-wide).
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with f:
        reader = csv.reader(lines())
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            if len(set(header)) != len(header) or not all(header):
                raise InputError(f"bad CSV header {header}: column names must be unique and non-empty",
                                 path=str(path), line=1)
            previous_end = reader.line_num
            for cells in reader:
                start, previous_end = previous_end + 1, reader.line_num
                if not cells:
                    continue  # a blank line
                if len(cells) != len(header):
                    yield RawRow(start, None, f"has {len(cells)} cells, the header has {len(header)}",
                                 raw=cells, position=consumed)
                    continue
                yield RawRow(start, dict(zip(header, cells, strict=True)), position=consumed)
        except csv.Error as exc:
            raise InputError(f"not readable as CSV: {exc}", path=str(path),
                             line=reader.line_num or None) from exc


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
            raise InputError(f"Parquet file broken after row {index}: {exc}", path=str(path)) from exc

    return Source(rows(), name, "parquet", total=table.metadata.num_rows, unit="rows")


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
        for index, row in enumerate(ds):
            yield RawRow(index + 1, row, position=index + 1)

    return Source(rows(), name or dataset, "hub", total=len(ds), unit="rows")


def to_jsonable(value: Any) -> Any:
    """Make a raw row safe for ``json.dumps`` (bytes, dates, numpy scalars from Parquet)."""
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


__all__ = ["RawRow", "Source", "open_local", "open_hub", "looks_like_hub_id", "to_jsonable",
           "LOCAL_SUFFIXES"]
