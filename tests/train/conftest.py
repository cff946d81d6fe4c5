"""Fixtures of the training tests: real pairs from dpo_en_demo.json with injected negatives."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pairs_helper import demo_records, make_negatives, write_pairs  # noqa: E402

ERROR_TYPES = ("correctness", "logic", "hallucination")


@pytest.fixture(scope="session")
def demo_negatives(shared_data, tmp_path_factory) -> Path:
    """negatives.jsonl-style file: 12 real records x 3 error types (short prompts and responses,
    so the tiny model trains in seconds)."""
    records = [r for r in demo_records(shared_data, 40, max_chars=600) if len(r.question) < 300][:12]
    rows = make_negatives(records, ERROR_TYPES)
    assert len({r["record_id"] for r in rows}) == 12
    return write_pairs(tmp_path_factory.mktemp("pairs") / "negatives.jsonl", rows)
