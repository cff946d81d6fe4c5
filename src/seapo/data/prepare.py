"""``seapo prepare``: read a data set in any supported layout, write normalized records.

Every input row ends up in exactly one place: the records file (kept), or the rejects
file with its line, field and reason (``rejected``: bad row; ``filtered``: a valid row
that is not a positive, such as a KTO row labelled false; ``duplicate``: a record
identical to an earlier one). So ``read == kept + rejected + filtered + duplicates``.
See docs/prepare.md.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from seapo.config import SeapoConfig, one_of
from seapo.data.layouts import LAYOUTS, ROW, FieldOptions, Layout, RowError, RowFiltered, candidates, type_name
from seapo.data.parsing import safe_text
from seapo.data.schema import Record
from seapo.data.sources import RawRow, Source, is_local_name, looks_like_hub_id, open_hub, open_local, to_jsonable
from seapo.errors import EXIT_BAD_INPUT, EXIT_NO_OUTPUT, InputError
from seapo.io import atomic_open, iter_jsonl

DEFAULT_SOURCE = "HuggingFaceH4/ultrafeedback_binarized"
"""The data set ``seapo prepare`` reads when no source is given (the paper's prompts)."""

DEFAULT_SPLITS = {DEFAULT_SOURCE: "train_prefs"}
"""Default split of Hub data sets whose splits are not called ``train``."""

DEMO_SOURCE = "demo"
"""Source name of the packaged offline demo data set (:func:`seapo.data.demo_path`)."""

FORMATS = ("auto", *LAYOUTS)
"""Accepted values of :attr:`PrepareConfig.format`."""

# Progress bars only for inputs big enough to take a noticeable moment.
_PROGRESS_MIN = {"bytes": 1 << 20, "rows": 5_000}


class PrepareConfig(SeapoConfig):
    """Settings of :func:`prepare` (``seapo prepare``; the ``prepare`` section of ``seapo run``)."""

    source: str = Field(DEFAULT_SOURCE, description="What to read: a local .json/.jsonl/.parquet/.csv file, a Hub "
                        "data set id (owner/name), a datasets builder such as 'parquet' with data_files, or 'demo' "
                        "for the packaged demo set.")
    format: str = Field("auto", description="Input layout: auto (detected from the fields of the first rows) or "
                        "one of " + ", ".join(LAYOUTS) + " (docs/prepare.md). 'generic' needs prompt_field and "
                        "response_field.")
    split: str | None = Field(None, description="Split of a Hub data set (default train_prefs for UltraFeedback, "
                              "else train); for local files only recorded in the records (default train).")
    subset: str | None = Field(None, description="Hub data set configuration name (e.g. 'main' for GSM8K).")
    data_files: list[str] | None = Field(None, description="Files for a datasets builder source such as 'parquet' "
                                         "or 'json'.")
    prompt_field: str | None = Field(None, description="generic layout: the field holding the prompt (text or "
                                     "chat messages); setting it with format auto selects generic.")
    response_field: str | None = Field(None, description="generic layout: the field holding the good response.")
    rejected_field: str | None = Field(None, description="generic layout: optional field holding the source's own "
                                       "rejected response.")
    system_field: str | None = Field(None, description="generic layout: optional field holding a system prompt.")
    rejects: str | None = Field(None, description="Where rejected, filtered and duplicate rows go (JSONL; default "
                                "<out stem>.rejects.jsonl next to the output).")
    strict: bool = Field(False, description="Fail (exit 2, bad input; write no records, but the rejects file) if "
                         "any row was rejected, naming the file and line of the first; filtered and duplicate rows "
                         "do not count.")
    limit: int | None = Field(None, ge=1, description="Read at most this many input rows.")
    dataset_name: str | None = Field(None, description="Name recorded in source.dataset (default: the source).")
    clean_gsm8k: bool = Field(True, description="gsm8k layout: remove the <<48/2=24>> calculator annotations.")
    detect_rows: int = Field(20, ge=1, description="Valid rows auto-detection looks at; they must agree on one "
                             "layout.")
    cache_dir: str | None = Field(None, description="datasets cache folder for Hub sources (default: the "
                                  "library's own).")
    progress: bool = Field(True, description="Show a progress bar (on stderr) for big inputs.")

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return one_of(value, FORMATS, "format")

    @field_validator("data_files", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _generic_fields(self) -> PrepareConfig:
        if self.format == "generic" and not (self.prompt_field and self.response_field):
            raise ValueError("format 'generic' needs prompt_field and response_field (--prompt-field, "
                             "--response-field)")
        return self


@dataclass
class PrepareResult:
    """What :func:`prepare` did. ``read == kept + rejected + filtered + duplicates``."""

    out: Path
    """The records file (written unless :attr:`written` is False)."""
    rejects: Path
    """The rejects file (always written; empty when every row was kept)."""
    dataset: str
    """``source.dataset`` of the records."""
    split: str
    """``source.split`` of the records (the Hub split read, or ``train`` for local files)."""
    format: str | None
    """The layout used (None when no row could be parsed at all)."""
    read: int = 0
    """Input rows read (blank lines are not rows)."""
    kept: int = 0
    """Records written."""
    rejected: int = 0
    """Bad rows, in the rejects file with ``kind: rejected``."""
    filtered: int = 0
    """Valid rows that are not positives (KTO ``label: false``), ``kind: filtered``."""
    duplicates: int = 0
    """Rows identical to an earlier record (same id), kept once, ``kind: duplicate``."""
    duplicate_ids: list[str] = field(default_factory=list)
    """Ids of records that appeared more than once (each id once)."""
    duplicate_prompts: int = 0
    """Prompts that have several (different) kept responses; those records are all kept."""
    duplicate_prompt_ids: list[list[str]] = field(default_factory=list)
    """For each such prompt, the ids of its records."""
    reject_fields: dict[str, int] = field(default_factory=dict)
    """Rejected rows counted by field."""
    examples: list[dict[str, Any]] = field(default_factory=list)
    """The first few rejected rows (``line``, ``field``, ``reason``), for messages."""
    hint: str | None = None
    """A suggestion when nothing was kept (e.g. the rows look like another layout)."""
    written: bool = False
    """The records file was written (False after a :class:`PrepareError`)."""

    def load_records(self) -> list[Record]:
        """Read the written records back."""
        return [Record.from_dict(row) for _, row in iter_jsonl(self.out)]

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["out"], row["rejects"] = str(self.out), str(self.rejects)
        return row


class PrepareError(InputError):
    """Nothing usable was read, or (``strict``) some rows were rejected. ``result`` has the counts;
    the rejects file was written, the records file was not. The CLI exits 1 (no usable output),
    or 2 (bad input) for a ``strict`` failure."""

    exit_code = EXIT_NO_OUTPUT

    def __init__(self, message: str, result: PrepareResult, *, path: str | None = None,
                 line: int | None = None, field: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message, path=path or result.dataset, line=line, field=field)
        self.result = result
        if exit_code is not None:
            self.exit_code = exit_code


def default_rejects_path(out: str | Path) -> Path:
    """``<out stem>.rejects.jsonl`` next to ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.rejects.jsonl")


def prepare(source: str | Path | None = None, *, out: str | Path,
            config: PrepareConfig | None = None, **overrides: Any) -> PrepareResult:
    """Normalize ``source`` (default: ``config.source``) into records at ``out`` (JSONL,
    docs/formats.md), atomically.

    ``source`` is a local ``.json``/``.jsonl``/``.parquet``/``.csv`` file, a Hub data set id
    (or a ``datasets`` builder name with ``data_files``, or a local data set folder), or
    ``"demo"`` for the packaged demo set. ``overrides`` set :class:`PrepareConfig` fields,
    e.g. ``prepare("x.jsonl", out="r.jsonl", format="alpaca", limit=100)``.

    Bad rows never stop the run: each goes to the rejects file with its line, field and
    reason. Raises :class:`~seapo.errors.InputError` when the source itself cannot be read
    or its layout cannot be recognised, and :class:`PrepareError` when no record could be
    made or, with ``strict``, when any row was rejected.
    """
    cfg = (config or PrepareConfig()).updated(**overrides)
    source = cfg.source if source is None else source
    out = Path(out)
    rejects_path = Path(cfg.rejects) if cfg.rejects else default_rejects_path(out)
    if out.resolve() == rejects_path.resolve():
        raise InputError("the rejects file must differ from the output file", path=str(out))
    src, split = _open(source, cfg)
    rows: Iterator[RawRow] = src.rows
    if cfg.limit is not None:
        rows = itertools.islice(rows, cfg.limit)
    layout, rows = _choose_layout(rows, cfg, src)
    result = PrepareResult(out=out, rejects=rejects_path, dataset=src.dataset, split=split,
                           format=layout.name if layout else None)
    opts = FieldOptions(prompt_field=cfg.prompt_field, response_field=cfg.response_field,
                        rejected_field=cfg.rejected_field, system_field=cfg.system_field,
                        clean_gsm8k=cfg.clean_gsm8k)
    first_line: dict[str, int] = {}
    prompts: dict[str, list[str]] = {}
    duplicate_ids: dict[str, None] = {}
    fields_counter: Counter[str] = Counter()
    sample_rows: list[dict[str, Any]] = []  # for the "looks like another layout" hint

    location = src.location or src.dataset

    with atomic_open(rejects_path) as rejects_file:

        def skip(kind: str, raw: RawRow, field_name: str, reason: str) -> None:
            rejects_file.write(_reject_line(location, kind, raw, field_name, reason))
            if kind == "rejected":
                fields_counter[field_name] += 1
                if len(result.examples) < 5:
                    example = {"line": raw.line, "field": field_name, "reason": reason}
                    if raw.end_line is not None:
                        example["end_line"] = raw.end_line
                    result.examples.append(example)

        try:
            with atomic_open(out) as out_file, _progress(src, cfg) as advance:
                for raw in rows:
                    result.read += 1
                    advance(raw.position)
                    if raw.error is not None:
                        result.rejected += 1
                        skip("rejected", raw, raw.field, raw.error)
                        continue
                    if not isinstance(raw.row, dict):
                        result.rejected += 1
                        skip("rejected", raw, ROW, f"expected an object with fields, got {type_name(raw.row)}")
                        continue
                    if len(sample_rows) < cfg.detect_rows:
                        sample_rows.append(raw.row)
                    try:
                        converted = layout.convert(raw.row, opts) if layout else None
                        assert converted is not None  # a dict row always fixes a layout (_choose_layout)
                        record = Record(prompt=converted.prompt, response=converted.response,
                                        rejected=converted.rejected,
                                        source={"dataset": src.dataset, "split": split,
                                                "format": layout.name, "line": raw.line})
                        if record.id not in first_line:
                            # the same keys as Record.to_dict(), without asdict's deep copy (hot loop)
                            text = _dumps({"id": record.id, "prompt": record.prompt, "response": record.response,
                                           "rejected": record.rejected, "source": record.source}) + "\n"
                            key = _prompt_key(record.prompt)
                    except RowFiltered as exc:
                        result.filtered += 1
                        skip("filtered", raw, exc.field, exc.reason)
                        continue
                    except RowError as exc:
                        result.rejected += 1
                        skip("rejected", raw, exc.field, exc.reason)
                        continue
                    except Exception as exc:  # any other failure on one row costs that row, not the run
                        result.rejected += 1
                        skip("rejected", raw, ROW, f"cannot be processed: {type(exc).__name__}: {exc}")
                        continue
                    if record.id in first_line:
                        result.duplicates += 1
                        duplicate_ids[record.id] = None
                        skip("duplicate", raw, "id", f"identical to the record from line "
                                                     f"{first_line[record.id]} (id {record.id})")
                        continue
                    try:
                        out_file.write(text)  # text that cannot be encoded raises before anything is written
                    except UnicodeEncodeError as exc:
                        result.rejected += 1
                        skip("rejected", raw, ROW, f"cannot be written as UTF-8: {exc.reason}")
                        continue
                    first_line[record.id] = raw.line
                    prompts.setdefault(key, []).append(record.id)
                    result.kept += 1
                if result.kept == 0 or (cfg.strict and result.rejected):
                    raise _Abort  # leaves any previous records file untouched
                result.written = True
        except _Abort:
            pass

    result.duplicate_ids = list(duplicate_ids)
    result.duplicate_prompt_ids = [ids for ids in prompts.values() if len(ids) > 1]
    result.duplicate_prompts = len(result.duplicate_prompt_ids)
    result.reject_fields = dict(fields_counter.most_common())
    if cfg.strict and result.rejected:
        # bad input: name the file, the line and the field of the first rejected row
        first = result.examples[0]
        lines = f"lines {first['line']}-{first['end_line']}" if "end_line" in first else f"line {first['line']}"
        raise PrepareError(f"strict: {result.rejected} of {result.read} rows rejected (first: {lines}, "
                           f"field '{first['field']}': {first['reason']}); no records written, see "
                           f"{rejects_path}", result, path=location, line=first["line"],
                           exit_code=EXIT_BAD_INPUT)
    if result.kept == 0:
        result.hint = _hint(layout, sample_rows, cfg)
        what = "no rows" if result.read == 0 else f"none of the {result.read} rows"
        raise PrepareError(f"{what} could be used; see {rejects_path}"
                           + (f". {result.hint}" if result.hint else ""), result, path=location)
    return result


class _Abort(Exception):
    """Internal: discard the records file but keep the rejects file."""


def _dumps(obj: Any) -> str:
    """One JSON line: standard JSON only (no NaN or Infinity), non-ASCII text as is."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def _reject_line(location: str, kind: str, raw: RawRow, field_name: str, reason: str) -> str:
    """The rejects file's line for ``raw``: never fails, whatever the row holds (a value nested
    too deep to write, NaN, text that is not valid Unicode): then ``raw`` is the row's text."""
    entry: dict[str, Any] = {"file": location, "line": raw.line}
    if raw.end_line is not None:
        entry["end_line"] = raw.end_line
    entry.update({"field": field_name, "reason": reason, "kind": kind})
    value = raw.raw if raw.error is not None else raw.row
    try:
        text = _dumps({**entry, "raw": to_jsonable(value)})
        text.encode("utf-8")
        return text + "\n"
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
        pass
    if isinstance(raw.raw, str):
        fallback: Any = raw.raw
    else:
        try:
            fallback = repr(value)[:100_000]
        except RecursionError:
            fallback = "<the row is nested too deeply to show>"
    entry = {k: safe_text(v) if isinstance(v, str) else v for k, v in entry.items()}
    return _dumps({**entry, "raw": safe_text(fallback)}) + "\n"


def _prompt_key(prompt: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _open(source: str | Path, cfg: PrepareConfig) -> tuple[Source, str]:
    """Open ``source`` and return it with the split name recorded in the records."""
    text = str(source)
    if text == DEMO_SOURCE and not Path(text).exists():
        from seapo.data import demo_path

        return open_local(demo_path(), cfg.dataset_name or "seapo-demo"), cfg.split or "train"
    path = Path(text).expanduser()
    if path.is_file() or is_local_name(text):
        if cfg.subset or cfg.data_files:
            raise InputError("subset and data_files apply to Hub/datasets sources, not to a local file",
                             path=text)
        return open_local(path, cfg.dataset_name or text), cfg.split or "train"
    if path.is_dir() or cfg.data_files or looks_like_hub_id(text):
        split = cfg.split or DEFAULT_SPLITS.get(text, "train")
        data_files = cfg.data_files[0] if cfg.data_files and len(cfg.data_files) == 1 else cfg.data_files
        return open_hub(text, split=split, subset=cfg.subset, data_files=data_files,
                        cache_dir=cfg.cache_dir, name=cfg.dataset_name), split
    raise InputError("not a file, a folder or a Hub data set id (owner/name)", path=text)


def _choose_layout(rows: Iterator[RawRow], cfg: PrepareConfig,
                   src: Source) -> tuple[Layout | None, Iterator[RawRow]]:
    """The layout to use, and the rows (with any looked-at rows put back in front)."""
    if cfg.format != "auto":
        return LAYOUTS[cfg.format], rows
    if cfg.prompt_field or cfg.response_field:
        if not (cfg.prompt_field and cfg.response_field):
            raise InputError("prompt_field and response_field go together (the generic layout)",
                             field="prompt_field" if not cfg.prompt_field else "response_field")
        return LAYOUTS["generic"], rows
    looked_at: list[RawRow] = []
    votes: Counter[str] = Counter()
    seen_keys: Counter[str] = Counter()
    valid = 0
    for raw in rows:
        looked_at.append(raw)
        if isinstance(raw.row, dict):
            valid += 1
            seen_keys.update(raw.row.keys())
            votes.update(candidates(raw.row))
            if valid >= cfg.detect_rows:
                break
    rest = itertools.chain(looked_at, rows)
    if valid == 0:
        return None, rest  # nothing parseable: every row will be rejected with its parse error
    best = max(votes.values(), default=0)
    winners = [name for name, count in votes.items() if count == best]
    listing = "".join(f"\n  {name}: {layout.description}" for name, layout in LAYOUTS.items())
    keys = ", ".join(key for key, _ in seen_keys.most_common(12))
    if best == 0:
        raise InputError(f"cannot recognise the layout: the first {valid} rows have the fields "
                         f"({keys}). Known layouts:{listing}\nChoose one with --format.",
                         path=src.dataset, field="format")
    if len(winners) > 1:
        raise InputError(f"ambiguous layout: the rows (fields: {keys}) fit "
                         f"{' and '.join(repr(w) for w in winners)}. Known layouts:{listing}\n"
                         f"Choose one with --format.", path=src.dataset, field="format")
    return LAYOUTS[winners[0]], rest


def _hint(layout: Layout | None, sample_rows: list[dict[str, Any]], cfg: PrepareConfig) -> str | None:
    """When nothing was kept with a chosen format, say which layout the rows look like."""
    votes = Counter(name for row in sample_rows for name in candidates(row))
    if not votes:
        return None
    guess, _ = votes.most_common(1)[0]
    if layout is not None and guess != layout.name:
        return f"The rows look like the '{guess}' layout, not '{layout.name}': try --format {guess}."
    return None


def _progress(src: Source, cfg: PrepareConfig):
    """A context giving ``advance(position)``: a rich bar on stderr for big inputs, else a no-op."""
    if not cfg.progress or src.total is None or src.total < _PROGRESS_MIN[src.unit]:
        return nullcontext(lambda position: None)
    return _RichProgress(src)


class _RichProgress:
    def __init__(self, src: Source) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        amount = DownloadColumn() if src.unit == "bytes" else MofNCompleteColumn()
        self.bar = Progress("[progress.description]{task.description}", BarColumn(), amount,
                            TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task(f"reading {src.dataset}", total=src.total)
        self.last = 0
        self.step = max(1, src.total // 200)  # redraw ~200 times, not once a row

    def __enter__(self):
        self.bar.__enter__()

        def advance(position: int) -> None:
            if position - self.last >= self.step:
                self.bar.update(self.task, completed=position)
                self.last = position

        return advance

    def __exit__(self, *exc: Any) -> None:
        self.bar.update(self.task, completed=self.last)
        self.bar.__exit__(*exc)


__all__ = ["prepare", "PrepareConfig", "PrepareResult", "PrepareError", "default_rejects_path",
           "DEFAULT_SOURCE", "DEMO_SOURCE", "FORMATS"]
