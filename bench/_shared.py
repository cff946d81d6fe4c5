"""What the bench scripts share: where the shared data is, reading the first rows of a JSONL file, and
sampling a process's resident memory while a side runs."""

from __future__ import annotations

import json
import os
import threading
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


class ResidentMemory:
    """Peak and final resident memory (MiB) of this process over a ``with`` block, sampled every 20 ms.

    ``ru_maxrss`` keeps the process's all-time peak, so it cannot tell two sides of one run apart; this can."""

    def __init__(self) -> None:
        self.start_mib = self.peak_mib = self.end_mib = 0.0
        self._stop = threading.Event()

    @staticmethod
    def now_mib() -> float:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mib = max(self.peak_mib, self.now_mib())

    def __enter__(self) -> ResidentMemory:
        self.start_mib = self.peak_mib = self.now_mib()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end_mib = self.now_mib()
        self.peak_mib = max(self.peak_mib, self.end_mib)

    def __str__(self) -> str:
        return f"RSS {self.start_mib:.0f} -> peak {self.peak_mib:.0f} -> {self.end_mib:.0f} MiB"
