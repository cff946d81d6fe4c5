"""Resumable storage of finished injections: SQLite in the run directory.

Each finished (record, error type) item is committed as soon as its batch is done, keyed by
record id, error type and a hash of the injector settings. Re-running the same command skips
finished items, so a killed run loses at most the batch in flight and never duplicates.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seapo.io import WriteError, open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    record_id   TEXT NOT NULL,
    error_type  TEXT NOT NULL,
    settings    TEXT NOT NULL,
    accepted    INTEGER NOT NULL,
    negative    TEXT,
    injector    TEXT,
    fallback    INTEGER NOT NULL,
    difference  REAL,
    changed_tokens INTEGER,
    reason      TEXT,
    attempts    TEXT NOT NULL,
    details     TEXT NOT NULL,
    session     TEXT NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (record_id, error_type, settings)
);
"""


@dataclass
class Attempt:
    """One try at a negative and how verification judged it."""

    injector: str
    passed: bool
    reason: str | None
    difference: float
    changed_tokens: int
    text: str | None = None
    error: str | None = None
    """The backend's reason when it failed on the item (reason ``backend_error``)."""
    judge: dict[str, Any] | None = None
    """The judge's verdict (:meth:`seapo.judge.Verdict.to_dict`) when the verifier passed the text."""
    fluency: float | None = None
    """The fluency gate's drop in nats (:mod:`seapo.inject.fluency`), when the gate scored the text."""


@dataclass
class ItemResult:
    """The final outcome for one (record, error type)."""

    record_id: str
    error_type: str
    accepted: bool
    negative: str | None
    injector: str | None
    fallback: bool
    difference: float | None
    changed_tokens: int | None
    reason: str | None
    """Why the last attempt failed (None when accepted)."""
    attempts: list[Attempt] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    session: str = ""


WIRE_FIELDS = ("record_id", "error_type", "accepted", "negative", "injector", "fallback", "difference",
               "changed_tokens", "reason", "attempts", "details", "session")
"""A stored item as a flat row (:func:`item_row`): what a Ray worker sends the driver."""


def item_row(item: ItemResult) -> dict[str, Any]:
    """``item`` as the store holds it: scalars, with attempts and details as JSON text."""
    return {"record_id": item.record_id, "error_type": item.error_type, "accepted": bool(item.accepted),
            "negative": item.negative, "injector": item.injector, "fallback": bool(item.fallback),
            "difference": item.difference, "changed_tokens": item.changed_tokens, "reason": item.reason,
            "attempts": json.dumps([a.__dict__ for a in item.attempts], ensure_ascii=False),
            "details": json.dumps(item.details, ensure_ascii=False), "session": item.session}


class InjectionStore:
    def __init__(self, path: str | Path, settings: str) -> None:
        self.path = Path(path)
        self.settings = settings
        self.db = open_store(self.path, SCHEMA)

    def done_keys(self) -> set[tuple[str, str]]:
        rows = self.db.execute("SELECT record_id, error_type FROM items WHERE settings = ?", (self.settings,))
        return set(rows.fetchall())

    def put_many(self, items: Iterable[ItemResult]) -> None:
        self.put_rows(item_row(it) for it in items)

    def put_rows(self, items: Iterable[dict[str, Any]]) -> None:
        """Store finished items given as :func:`item_row` rows, in one transaction."""
        now = time.time()
        rows = [
            (it["record_id"], it["error_type"], self.settings, int(it["accepted"]), it["negative"], it["injector"],
             int(it["fallback"]), it["difference"], it["changed_tokens"], it["reason"], it["attempts"],
             it["details"], it["session"], now)
            for it in items
        ]
        try:
            with self.db:  # one transaction: a batch is stored whole or not at all
                self.db.executemany("INSERT OR REPLACE INTO items VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        except sqlite3.OperationalError as exc:  # "database or disk is full", a read-only file
            raise WriteError(f"cannot store finished items ({exc}); what was stored before is kept and a rerun "
                             f"resumes from it", path=str(self.path)) from None

    def get_all(self) -> dict[tuple[str, str], ItemResult]:
        cursor = self.db.execute(
            "SELECT record_id, error_type, accepted, negative, injector, fallback, difference, changed_tokens,"
            " reason, attempts, details, session FROM items WHERE settings = ?", (self.settings,))
        results = {}
        for row in cursor:
            item = ItemResult(row[0], row[1], bool(row[2]), row[3], row[4], bool(row[5]), row[6], row[7], row[8],
                              [Attempt(**a) for a in json.loads(row[9])], json.loads(row[10]), row[11])
            results[(item.record_id, item.error_type)] = item
        return results

    def close(self) -> None:
        self.db.close()
