"""The normalized record every later stage reads: one prompt with one good response."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
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
