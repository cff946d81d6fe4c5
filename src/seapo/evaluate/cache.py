"""Per-item result cache: (model key, task key, item id) -> result, in SQLite.

Results are committed chunk by chunk, so an interrupted evaluation resumes where it stopped
and a re-run with a larger ``--limit`` computes only the new items.

* The model key (:func:`model_key`) is seapo's one content fingerprint of the weights
  (:func:`seapo.fingerprint.model_fingerprint`) plus the dtype they run in: a copy of a model
  shares results, a retrained one never does, whatever its file sizes and times.
* The task key (:func:`seapo.evaluate.runner.task_key`) holds the task's protocol hash, its
  engine and, for lm-eval tasks, lm-eval's version and task versions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seapo.fingerprint import model_fingerprint, stable_hash


def model_key(path: str | Path, dtype: str) -> str:
    """Cache key of a model: the content of its weights (or its Hub id and revision) and its dtype."""
    return stable_hash([model_fingerprint(path), dtype])


class ResultCache:
    """A small SQLite table; safe to share between runs (and models) in one output folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        self.db.execute("CREATE TABLE IF NOT EXISTS results (model TEXT, task TEXT, item TEXT, value TEXT, "
                        "PRIMARY KEY (model, task, item))")
        self.db.commit()

    def get_many(self, model: str, task: str, items: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = set(items)
        rows = self.db.execute("SELECT item, value FROM results WHERE model = ? AND task = ?", (model, task))
        return {item: json.loads(value) for item, value in rows if item in wanted}

    def put_many(self, model: str, task: str, results: dict[str, dict[str, Any]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                            [(model, task, item, json.dumps(value, ensure_ascii=False))
                             for item, value in results.items()])
        self.db.commit()

    def count(self, model: str | None = None, task: str | None = None) -> int:
        query, args = "SELECT COUNT(*) FROM results WHERE 1=1", []
        if model is not None:
            query, args = query + " AND model = ?", [*args, model]
        if task is not None:
            query, args = query + " AND task = ?", [*args, task]
        return int(self.db.execute(query, args).fetchone()[0])

    def close(self) -> None:
        self.db.close()
