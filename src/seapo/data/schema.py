"""The normalized record every later stage reads: one prompt with one good response."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("system", "user", "assistant")


def record_id(prompt: list[dict[str, str]], response: str) -> str:
    """Stable id: a hash of the content, so the same row always gets the same id."""
    canonical = json.dumps({"prompt": prompt, "response": response}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass
class Record:
    """A prompt (chat messages ending with a user turn) and its positive response."""

    prompt: list[dict[str, str]]
    """Chat messages ``{"role", "content"}``; the last one is the user's question."""
    response: str
    """The good (positive) response: the ``chosen`` side of every pair made from it."""
    rejected: str | None = None
    """The source's own rejected response, when it had one (kept for reference)."""
    source: dict[str, Any] = field(default_factory=dict)
    """Where the row came from: ``dataset``, ``split``, ``format``, ``line``."""
    id: str = ""
    """Content hash of prompt + response (filled in automatically)."""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = record_id(self.prompt, self.response)

    @property
    def question(self) -> str:
        """The last user message: what the response answers."""
        return next(m["content"] for m in reversed(self.prompt) if m["role"] == "user")

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        return {"id": row.pop("id"), **row}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Record:
        return cls(prompt=row["prompt"], response=row["response"], rejected=row.get("rejected"),
                   source=row.get("source", {}), id=row.get("id", ""))


def read_records(path: str | Path) -> list[Record]:
    """Read normalized records (``seapo prepare`` output), naming file, line and field on bad rows."""
    from seapo.errors import InputError
    from seapo.io import iter_jsonl

    records = []
    for line_no, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise InputError("a record must be a JSON object", path=str(path), line=line_no)
        for name, kind in (("prompt", list), ("response", str)):
            if not isinstance(row.get(name), kind) or not row[name]:
                raise InputError(f"missing or not a non-empty {kind.__name__}; is this a file written by "
                                 "`seapo prepare`?", path=str(path), line=line_no, field=name)
        if not all(isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
                   for m in row["prompt"]) or row["prompt"][-1]["role"] != "user":
            raise InputError("prompt must be a list of {role, content} messages ending with a user turn",
                             path=str(path), line=line_no, field="prompt")
        records.append(Record.from_dict(row))
    return records
