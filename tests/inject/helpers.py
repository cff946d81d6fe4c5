"""Small helpers shared by the injection tests: real records from ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

from seapo.data.schema import Record


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
