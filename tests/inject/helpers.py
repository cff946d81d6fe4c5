"""Small helpers shared by the injection tests: real records from ../shared/data."""

from __future__ import annotations

import json
import time
from pathlib import Path

from seapo.data.schema import Record
from seapo.inject.rules import RulesInjector


def gsm8k_records(shared_data: Path, n: int) -> list[Record]:
    """The first n GSM8K training problems as records (question -> worked solution)."""
    records = []
    with open(shared_data / "source" / "gsm8k" / "train.jsonl", encoding="utf-8") as f:
        for line_no, line in zip(range(1, n + 1), f, strict=False):
            row = json.loads(line)
            records.append(Record(prompt=[{"role": "user", "content": row["question"]}], response=row["answer"],
                                  source={"dataset": "gsm8k", "line": line_no}))
    return records


def write_records(path: Path, records: list[Record]) -> Path:
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records), encoding="utf-8")
    return path


def tiny_llm(model: Path, **settings):
    """LLM injector settings on a local model folder: 4 new tokens, fp32 (fast, deterministic)."""
    from seapo.inject.llm import LLMInjectorConfig

    return LLMInjectorConfig(backend={"model": str(model), "dtype": "fp32", **settings.pop("backend", {})},
                             **{"max_new_tokens": 4, **settings})


def ultrafeedback_records(shared_data: Path, n: int) -> list[Record]:
    """The first n UltraFeedback rows with a non-empty chosen response, as records (prompt -> chosen)."""
    records = []
    with open(shared_data / "source" / "ultrafeedback" / "train_1k.jsonl", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            row = json.loads(line)
            if row["chosen"].strip():
                records.append(Record(prompt=[{"role": "user", "content": row["prompt"]}], response=row["chosen"],
                                      source={"dataset": "ultrafeedback", "line": line_no}))
            if len(records) >= n:
                break
    return records


class SlowRules(RulesInjector):
    """The rules injector (same name, fingerprint and negatives), sleeping ``delay`` seconds per call:
    slow enough for a test to act mid-run. Defined here, not in a test module, so that Ray workers
    can unpickle it (tests/inject/test_ray.py puts the repository on their path)."""

    def __init__(self, *args, delay: float = 0.3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay

    def inject(self, records, error_type, *, attempt=0, progress=None):
        time.sleep(self.delay)
        return super().inject(records, error_type, attempt=attempt, progress=progress)
