"""What the bench scripts share: where the shared data is, and reading the first rows of a JSONL file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEAPO_SHARED_DATA", REPO.parent / "shared" / "data"))
GSM8K_TRAIN = SHARED / "source" / "gsm8k" / "train.jsonl"


def first_rows(path: str | Path, n: int) -> list[dict[str, Any]]:
    """The first ``n`` non-blank rows of a JSONL file."""
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) >= n:
                break
    return rows
