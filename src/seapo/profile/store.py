"""Resumable storage of ``seapo profile``: SQLite in the output folder, like the injection store.

Two tables, so that judging again (another judge) reuses the policy's answers:

* ``answers`` -- keyed by (item id, generation key: the policy's fingerprint and decoding settings);
* ``verdicts`` -- keyed by (item id, generation key, judge key: the judge's fingerprint).

A chunk's answers and verdicts are committed in one transaction: a ``kill -9`` loses at most the
chunk in flight, and a rerun never duplicates.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seapo.io import WriteError, open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    item_id TEXT NOT NULL, gen_key TEXT NOT NULL, answer TEXT NOT NULL, finish_reason TEXT NOT NULL,
    num_tokens INTEGER NOT NULL, error TEXT,
    PRIMARY KEY (item_id, gen_key)
);
CREATE TABLE IF NOT EXISTS verdicts (
    item_id TEXT NOT NULL, gen_key TEXT NOT NULL, judge_key TEXT NOT NULL, verdict TEXT NOT NULL,
    PRIMARY KEY (item_id, gen_key, judge_key)
);
"""


@dataclass
class Answer:
    text: str
    finish_reason: str
    num_tokens: int
    error: str | None = None
    """The backend's reason when it failed on the item (the answer is then not judged)."""


class ProfileStore:
    def __init__(self, path: str | Path, gen_key: str, judge_key: str) -> None:
        self.path, self.gen_key, self.judge_key = Path(path), gen_key, judge_key
        self.db = open_store(self.path, SCHEMA)

    def answers(self) -> dict[str, Answer]:
        rows = self.db.execute("SELECT item_id, answer, finish_reason, num_tokens, error FROM answers WHERE gen_key=?",
                               (self.gen_key,))
        return {r[0]: Answer(r[1], r[2], r[3], r[4]) for r in rows}

    def verdicts(self) -> dict[str, dict[str, Any]]:
        rows = self.db.execute("SELECT item_id, verdict FROM verdicts WHERE gen_key=? AND judge_key=?",
                               (self.gen_key, self.judge_key))
        return {r[0]: json.loads(r[1]) for r in rows}

    def put(self, answers: Iterable[tuple[str, Answer]], verdicts: Iterable[tuple[str, dict[str, Any]]]) -> None:
        a = [(i, self.gen_key, x.text, x.finish_reason, x.num_tokens, x.error) for i, x in answers]
        v = [(i, self.gen_key, self.judge_key, json.dumps(d, ensure_ascii=False)) for i, d in verdicts]
        try:
            with self.db:  # one transaction: a chunk is stored whole or not at all
                self.db.executemany("INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?)", a)
                self.db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?)", v)
        except sqlite3.OperationalError as exc:
            raise WriteError(f"cannot store finished items ({exc}); what was stored before is kept and a rerun "
                             "resumes from it", path=str(self.path)) from None

    def close(self) -> None:
        self.db.close()
