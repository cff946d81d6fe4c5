"""Fixtures of the training tests: real pairs from dpo_en_demo.json with negatives injected by the
real rules injector and checked by the real verifier, and the settings the quick runs share."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seapo.data.schema import Record
from seapo.inject.error_types import ErrorType
from seapo.inject.rules import RulesInjector
from seapo.inject.verify import Verifier
from seapo.io import read_jsonl, write_jsonl
from seapo.train.config import TrainConfig
from seapo.train.data import load_preferences, select_pairs
from tests.inject.helpers import gsm8k_records

ERROR_TYPES = ("correctness", "logic", "hallucination")
ROLE = {"human": "user", "gpt": "assistant", "system": "system"}


def demo_records(shared_data: Path, limit: int, max_chars: int = 700) -> list[Record]:
    """Single-turn rows of dpo_en_demo.json (LLaMA-Factory sharegpt DPO layout, parsed here
    directly) with a short positive, in file order."""
    rows = json.loads((shared_data / "preference" / "dpo_en_demo.json").read_text(encoding="utf-8"))
    records = []
    for line, row in enumerate(rows, start=1):
        conv = row["conversations"]
        if len(conv) != 1 or conv[0]["from"] != "human" or len(row["chosen"]["value"]) > max_chars:
            continue
        prompt = [{"role": ROLE[m["from"]], "content": m["value"]} for m in conv]
        records.append(Record(prompt=prompt, response=row["chosen"]["value"], rejected=row["rejected"]["value"],
                              source={"dataset": "dpo_en_demo", "split": "train", "format": "sharegpt",
                                      "line": line}))
        if len(records) == limit:
            break
    return records


def make_negatives(records: list[Record], error_types: tuple[str, ...]) -> list[dict[str, Any]]:
    """pairs.jsonl rows (docs/formats.md), one per record and error type, each verified."""
    verifier = Verifier()
    rows = []
    for et in error_types:
        for record, injection in zip(records, RulesInjector().inject(records, ErrorType(et)), strict=True):
            check = verifier.check(record.response, injection.text)
            if not check.passed:
                continue
            rows.append({
                "id": f"{record.id}-{et}", "record_id": record.id, "prompt": record.prompt,
                "chosen": {"role": "assistant", "content": record.response},
                "rejected": {"role": "assistant", "content": injection.text},
                "error_type": et, "injector": "rules", "fallback": False,
                "difference": check.difference, "changed_tokens": check.changed_tokens, "attempts": 1,
                "details": {},
            })
    return rows


@pytest.fixture(scope="session")
def demo_negatives(shared_data, tmp_path_factory) -> Path:
    """negatives.jsonl-style file: 12 real records x 3 error types (short prompts and responses,
    so the tiny model trains in seconds)."""
    # The first 12 short records that get a negative of every type (the rules injector makes none of
    # a type where the text has nothing that type can act on).
    # dpo_en_demo's short answers give the second-generation rules too little to act on for all three
    # types (1 of its short records gets all three), so GSM8K's worked solutions are used here.
    candidates = [r for r in gsm8k_records(shared_data, 60) if len(r.question) < 300 and len(r.response) < 600]
    rows = make_negatives(candidates, ERROR_TYPES)
    per_record = Counter(r["record_id"] for r in rows)
    keep = [rid for rid in dict.fromkeys(r["record_id"] for r in rows) if per_record[rid] == len(ERROR_TYPES)][:12]
    rows = [r for r in rows if r["record_id"] in keep]
    assert len({r["record_id"] for r in rows}) == 12
    path = tmp_path_factory.mktemp("pairs") / "negatives.jsonl"
    write_jsonl(path, rows)
    return path


@pytest.fixture
def pairs_subset(demo_negatives, tmp_path) -> Callable[..., Path]:
    """``pairs_subset(n)``: a pairs.jsonl of the first ``n`` records of ``demo_negatives``, one
    negative each (``pairing="all"``: every one)."""

    def make(n_records: int, pairing: str = "mixed") -> Path:
        pairs = select_pairs(load_preferences(demo_negatives).groups[:n_records], pairing, seed=0)
        by_id = {(r["record_id"], r["error_type"]): r for r in read_jsonl(demo_negatives)}
        dest = tmp_path / f"pairs-{n_records}-{pairing}.jsonl"
        write_jsonl(dest, [by_id[(p.record_id, p.error_type)] for p in pairs])
        return dest

    return make


@pytest.fixture
def tiny_config(tiny_model, tmp_path) -> Callable[..., TrainConfig]:
    """``tiny_config(name, **fields)``: a TrainConfig for the tiny model writing to ``tmp_path/name``,
    with what the quick runs share (short sequences, no held-out split, no merged copy); ``fields``
    override any of it."""

    def make(name: str = "run", **fields: Any) -> TrainConfig:
        base = dict(model=str(tiny_model), output_dir=str(tmp_path / name), max_length=192, heldout_fraction=0.0,
                    merge=False)
        return TrainConfig(**{**base, **fields})

    return make


@pytest.fixture(scope="module")
def tiny_lm(tiny_model):
    """The tiny model (fp32, eval mode) and its tokenizer, loaded once per module."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="session")
def injected_pairs(shared_data, tmp_path_factory) -> Path:
    """negatives.jsonl of ``seapo inject`` itself (rules injector, every error type, no judge) on 16
    real GSM8K records (dpo_en_demo's short answers give the rules too little to act on): the pairs
    the held-out metrics and the focus option are tested on."""
    from seapo.inject.pipeline import InjectConfig, inject

    records = [r for r in gsm8k_records(shared_data, 60) if len(r.question) < 300 and len(r.response) < 600][:16]
    result = inject(records, tmp_path_factory.mktemp("inject"),
                    InjectConfig(injector="rules", strategy="all", judge={"name": "none"}))
    assert result.summary["pairs"] >= 30
    return result.negatives_path
