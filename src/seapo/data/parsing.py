"""Tolerant parsing for ``seapo prepare``: one bad row costs that row, never the file.

* :func:`physical_lines` reads a file (gzip too) as bytes, line by line, so that bytes that
  are not UTF-8 only cost the line they are on, and a broken compressed stream only costs
  what comes after it;
* :class:`JsonRowParser` parses one JSON value and reports what Python's :mod:`json` would
  let through silently or crash on: duplicate keys, ``NaN``/``Infinity`` (and ``1e400``,
  read as infinity), integers too long to convert, lone surrogates (``"\\ud800"``, which
  cannot be written as UTF-8), nesting too deep for the parser;
* :func:`locate_csv_problem` says which field and line of a CSV record breaks the quoting
  rules (a quote opened and never closed, text after a closing quote).

Each problem comes back as a ``(field, reason)`` pair for the rejects file.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from seapo.errors import InputError

ROW = "<row>"
"""The ``field`` of a problem that concerns the whole row (same as :data:`seapo.data.layouts.ROW`)."""

GZIP_MAGIC = b"\x1f\x8b"

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): only rows with one can hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Strings and brackets, to find where a JSON value that failed to parse ends (error path only).
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*("?)|[\[\]{},]', re.S)


# ---------------------------------------------------------------- reading lines


def open_binary(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """``(stream, raw)``: the file's bytes (decompressed when it starts with the gzip magic)
    and the underlying file (whose position is the progress). Raises InputError if unreadable."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
    try:
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
    except OSError as exc:
        raw.close()
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
    return (gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw), raw


@dataclass
class Line:
    """One physical line of a file."""

    number: int
    """1-based line number."""
    data: bytes
    """The bytes, line ending included."""
    position: int
    """Bytes of the (compressed) file read so far."""


class BrokenStream(Exception):
    """The file could not be read past some line (a truncated gzip, an I/O error)."""

    def __init__(self, after: int, reason: str) -> None:
        self.after, self.reason = after, reason
        super().__init__(reason)


def physical_lines(stream: BinaryIO, raw: BinaryIO, *, split_cr: bool = False) -> Iterator[Line]:
    """The lines of ``stream``, split at ``\\n`` (and, with ``split_cr``, at a lone ``\\r`` too,
    as ``open(newline="")`` does for CSV). Raises :class:`BrokenStream` if reading fails midway."""
    number = 0
    compressed = stream is not raw
    position = 0
    try:
        for data in stream:
            pieces = data.splitlines(keepends=True) if split_cr and b"\r" in data[:-2] else (data,)
            if compressed:
                position = raw.tell()
            for piece in pieces:
                number += 1
                if not compressed:
                    position += len(piece)
                yield Line(number, piece, position)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        what = "the compressed data is truncated or corrupt" if compressed else "the file could not be read"
        raise BrokenStream(number, f"{what} after line {number}: {exc}") from exc


def decode_error(exc: UnicodeDecodeError, data: bytes, number: int) -> str:
    """A reason for bytes that are not UTF-8 on line ``number``: which byte, at which column."""
    hint = " (the file looks like UTF-16: convert it to UTF-8)" \
        if number == 1 and data.startswith((b"\xff\xfe", b"\xfe\xff")) else ""
    return f"not valid UTF-8: byte 0x{data[exc.start]:02x} at column {exc.start + 1} ({exc.reason}){hint}"


def safe_text(text: str, *, undecoded: bool = False) -> str:
    """``text`` with anything that cannot be written as UTF-8 (lone surrogates) escaped;
    with ``undecoded``, surrogates that stand for bytes that were not UTF-8 (``surrogateescape``)
    become U+FFFD instead."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        if undecoded:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------- JSON


class _Bad:
    """Put in place of a value that must not be read as is; found afterwards by a walk."""

    __slots__ = ("reason", "key")

    def __init__(self, reason: str, key: str | None = None) -> None:
        self.reason, self.key = reason, key


class JsonRowParser:
    """Parse JSON rows strictly: a problem anywhere in a row is reported with its field path.

    Not thread-safe (one per reader)."""

    def __init__(self) -> None:
        self._flagged = False
        self.decoder = json.JSONDecoder(object_pairs_hook=self._object, parse_float=self._float,
                                        parse_int=self._int, parse_constant=self._constant)

    # hooks: never raise (so the parser still finds where the value ends), flag instead
    def _object(self, pairs: list[tuple[str, Any]]) -> Any:
        row = dict(pairs)
        if len(row) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self._flagged = True
                    return _Bad(f"duplicate key '{safe_text(key)}' (which value is meant is ambiguous)", key)
                seen.add(key)
        return row

    def _float(self, text: str) -> Any:
        value = float(text)
        if math.isfinite(value):
            return value
        self._flagged = True
        return _Bad(f"number {text[:40]} is out of range (it would be read as infinity)")

    def _int(self, text: str) -> Any:
        try:
            return int(text)
        except ValueError:  # more digits than sys.get_int_max_str_digits() allows
            self._flagged = True
            return _Bad(f"integer with {len(text.lstrip('-'))} digits is too long to read")

    def _constant(self, name: str) -> Any:
        self._flagged = True
        return _Bad(f"{name} is not a number in standard JSON (non-finite numbers are not accepted)")

    def parse(self, text: str, start: int = 0, *, whole: bool = True) -> tuple[Any, int, tuple[str, str] | None]:
        """``(value, end, problem)``: the value starting at ``start`` (after whitespace), where
        it ends, and the first ``(field, reason)`` problem in it (then ``value`` is unusable).
        With ``whole``, only whitespace may follow. A value that cannot be parsed at all gives
        ``(None, -1, problem)``."""
        self._flagged = False
        start = _WHITESPACE.match(text, start).end()
        try:
            value, end = self.decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            return None, -1, (ROW, f"malformed JSON: {exc.msg} (column {exc.colno})")
        except RecursionError:
            return None, -1, (ROW, "nested too deeply to read (thousands of levels of lists or objects)")
        except ValueError as exc:  # anything else the decoder raises on odd input
            return None, -1, (ROW, f"unreadable JSON: {exc}")
        if whole:
            rest = _WHITESPACE.match(text, end).end()
            if rest != len(text):
                column = rest - text.rfind("\n", 0, rest)
                return None, -1, (ROW, f"malformed JSON: extra data after the value (column {column})")
        problem = None
        if self._flagged or _SURROGATE_ESCAPE.search(text, start, end):
            problem = find_problem(value)
        return value, end, problem


def _field_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def find_problem(value: Any) -> tuple[str, str] | None:
    """The first flagged value or lone surrogate in ``value``, as ``(field path, reason)``
    (iterative: the value may be nested as deep as the parser allows)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, _Bad):
            field = _field_path(path, safe_text(item.key)) if item.key is not None else path
            return field or ROW, item.reason
        if isinstance(item, dict):
            for key, child in reversed(item.items()):
                child_path = _field_path(path, safe_text(key))
                if not _encodable(key):
                    return child_path, "the key holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text"
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(item))))
        elif isinstance(item, str) and not _encodable(item):
            return path or ROW, "holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text, it " \
                                "cannot be written as UTF-8"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_value_end(text: str, start: int) -> int | None:
    """Where the array element starting at ``start`` ends (the index of the ``,`` or ``]``
    after it), found by matching brackets outside strings; None when that cannot be told
    (an unclosed bracket or string). Used only to skip an element that failed to parse."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text, start):
        token = match.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            if depth == 0:
                return match.start() if token == "]" else None
            depth -= 1
        elif token == "," and depth == 0:
            return match.start()
        elif token.startswith('"') and not match.group(1):
            return None  # a string that never ends
    return None


# ---------------------------------------------------------------- CSV


def locate_csv_problem(lines: list[tuple[int, str]], header: list[str]) -> tuple[str, int, str] | None:
    """For a CSV record (its physical lines) that :mod:`csv` refused in strict mode: the
    ``(field, line, reason)`` of the first quoting error, or None if none is found.

    The rules are those of the default dialect: a field that starts with ``"`` is quoted and
    ends at the next ``"`` not doubled, which must be followed by ``,`` or the line's end.
    """
    def name(index: int) -> str:
        return header[index] if index < len(header) else f"<column {index + 1}>"

    field, state, opened = 0, "start", (0, 0)
    for number, text in lines:
        for column, char in enumerate(text, start=1):
            if state == "start":
                if char == '"':
                    state, opened = "quoted", (number, column)
                elif char == ",":
                    field += 1
                elif char not in "\r\n":
                    state = "plain"
            elif state == "plain":
                if char == ",":
                    field, state = field + 1, "start"
            elif state == "quoted":
                if char == '"':
                    state = "quote"
            elif state == "quote":  # just after a quote inside a quoted field
                if char == '"':
                    state = "quoted"
                elif char == ",":
                    field, state = field + 1, "start"
                elif char in "\r\n":
                    state = "start"
                else:
                    return name(field), number, (f"text after the closing quote (line {number}, column "
                                                 f"{column}); a quote inside a quoted field must be doubled")
        if state == "plain":
            state = "start"
    if state == "quoted":
        last = lines[-1][0]
        span = f": it would take in lines {opened[0]}-{last}, to the end of the file" if last > opened[0] else ""
        return name(field), opened[0], (f"the quote opened at line {opened[0]}, column {opened[1]} is never "
                                        f"closed{span}")
    return None


__all__ = ["ROW", "JsonRowParser", "find_problem", "json_value_end", "locate_csv_problem",
           "physical_lines", "open_binary", "Line", "BrokenStream", "decode_error", "safe_text"]
