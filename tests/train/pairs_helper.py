"""Build real preference pairs for the training tests from dpo_en_demo.json.

Prompts and positives come from the real file (LLaMA-Factory sharegpt DPO layout, parsed here
directly); negatives are made by ``RulesInjector`` when it exists, else by the small deterministic
text perturbations below, one per error type. Every negative is checked by the real ``Verifier``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from seapo.data.schema import Record
from seapo.inject.verify import Verifier
from seapo.io import write_jsonl

ROLE = {"human": "user", "gpt": "assistant", "system": "system"}
_NUMBER = re.compile(r"\b\d+\b")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def demo_records(shared_data: Path, limit: int, max_chars: int = 700) -> list[Record]:
    """Single-turn rows of dpo_en_demo.json with a short positive, in file order."""
    rows = json.loads((shared_data / "preference" / "dpo_en_demo.json").read_text(encoding="utf-8"))
    records = []
    for line, row in enumerate(rows, start=1):
        conv = row["conversations"]
        if len(conv) != 1 or conv[0]["from"] != "human" or len(row["chosen"]["value"]) > max_chars:
            continue
        prompt = [{"role": ROLE[m["from"]], "content": m["value"]} for m in conv]
        records.append(Record(prompt=prompt, response=row["chosen"]["value"],
                              rejected=row["rejected"]["value"],
                              source={"dataset": "dpo_en_demo", "split": "train", "format": "sharegpt",
                                      "line": line}))
        if len(records) == limit:
            break
    return records


def corrupt(text: str, error_type: str) -> str:
    """Deterministic perturbation with one error of the given type."""
    sentences = _SENTENCE.split(text.strip())
    if error_type == "correctness":
        if _NUMBER.search(text):
            return _NUMBER.sub(lambda m: str(int(m.group()) * 3 + 7), text, count=2)
        return sentences[0] + " This is false, and the opposite is true. " + " ".join(sentences[1:])
    if error_type == "logic":
        if len(sentences) >= 3:
            sentences[0], sentences[-1] = sentences[-1], sentences[0]
            return " ".join(sentences) + " Therefore the first point contradicts itself."
        return text.strip() + " Therefore, since this is true, it must also be false."
    if error_type == "hallucination":
        fake = ("According to a 2017 study by the Halvorsen Institute in Reykjavik, 73% of experts "
                "confirmed this.")
        return " ".join([sentences[0], fake, *sentences[1:]])
    raise ValueError(error_type)


def make_negatives(records: list[Record], error_types: tuple[str, ...]) -> list[dict]:
    """pairs.jsonl rows (docs/formats.md), one per record and error type, verified."""
    try:  # the real rules injector, once it exists
        from seapo.inject.error_types import ErrorType
        from seapo.inject.rules import RulesInjector  # type: ignore[import-not-found]
    except ImportError:
        RulesInjector = None  # noqa: N806
    verifier = Verifier()
    rows = []
    for et in error_types:
        if RulesInjector is not None:
            injections = RulesInjector().inject(records, ErrorType(et))
            texts = [i.text for i in injections]
            injector = "rules"
        else:
            texts = [corrupt(r.response, et) for r in records]
            injector = "test-perturbation"
        for record, negative in zip(records, texts, strict=True):
            check = verifier.check(record.response, negative)
            if not check.passed:
                continue
            rows.append({
                "id": f"{record.id}-{et}", "record_id": record.id, "prompt": record.prompt,
                "chosen": {"role": "assistant", "content": record.response},
                "rejected": {"role": "assistant", "content": negative},
                "error_type": et, "injector": injector, "fallback": False,
                "difference": check.difference, "changed_tokens": check.changed_tokens, "attempts": 1,
                "details": {},
            })
    return rows


def write_pairs(path: Path, rows: list[dict]) -> Path:
    write_jsonl(path, rows)
    return path
