"""The prompts ``seapo profile`` asks the policy, each with what its answer is judged against.

Three kinds of data, told apart by ``format`` (``auto``: by the file):

* ``gsm8k`` -- GSM8K JSONL (``question``, ``answer`` ending ``#### <number>``): the worked solution
  is the reference and the final number the one correct answer;
* ``truthfulqa`` -- the TruthfulQA CSV (or ``truthfulqa`` for the Hub copy), read by
  evaluation's loader: the best answer is the reference, with the correct and incorrect lists;
  grouped by ``Category`` (the CSV only);
* ``records`` -- any ``seapo prepare`` output: the positive is the reference (no answer lists, so
  only the LLM judge can decide; the reference judge says "unknown").
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from seapo.errors import InputError
from seapo.fingerprint import stable_hash
from seapo.io import iter_jsonl
from seapo.judge.base import JudgeItem

DataFormat = Literal["auto", "gsm8k", "truthfulqa", "records"]
HUB_TRUTHFULQA = "truthfulqa"


@dataclass(frozen=True)
class ProfileItem:
    """One prompt for the policy and its reference."""

    id: str
    """Content hash of the prompt and its reference: the resume key, stable across files and orders."""
    group: str
    """Source or category it is counted under (``gsm8k``, a TruthfulQA category, a record's dataset)."""
    question: str
    reference: str
    correct_answers: tuple[str, ...] = ()
    incorrect_answers: tuple[str, ...] = ()
    prompt: tuple[tuple[str, str], ...] = ()
    """The chat the policy answers as (role, content) pairs (default: the question as one user turn)."""

    def messages(self) -> list[dict[str, str]]:
        turns = self.prompt or (("user", self.question),)
        return [{"role": role, "content": content} for role, content in turns]

    def judge_item(self, response: str) -> JudgeItem:
        return JudgeItem(self.question, response, self.reference, self.correct_answers, self.incorrect_answers)


def _item(group: str, question: str, reference: str, correct: tuple[str, ...] = (),
          incorrect: tuple[str, ...] = (), prompt: tuple[tuple[str, str], ...] = ()) -> ProfileItem:
    key = stable_hash([list(prompt) or question, reference, list(correct), list(incorrect)])
    return ProfileItem(key, group, question, reference, correct, incorrect, prompt)


def detect_format(data: str) -> Literal["gsm8k", "truthfulqa", "records"]:
    if data == HUB_TRUTHFULQA or data.lower().endswith(".csv"):
        return "truthfulqa"
    path = Path(data)
    if not path.is_file():
        raise InputError("no such file (give a GSM8K or records JSONL, the TruthfulQA CSV, or 'truthfulqa' for the "
                         "Hub copy)", path=data, field="data")
    for line, row in iter_jsonl(path):
        if isinstance(row, dict) and "question" in row and "answer" in row:
            return "gsm8k"
        if isinstance(row, dict) and "prompt" in row and "response" in row:
            return "records"
        raise InputError("neither GSM8K (question, answer) nor seapo records (prompt, response); set --format",
                         path=data, line=line)
    raise InputError("the file holds no rows", path=data)


def read_gsm8k(path: str | Path) -> list[ProfileItem]:
    from seapo.evaluate.loaders import normalize_number

    items = []
    for line, row in iter_jsonl(path):
        for name in ("question", "answer"):
            if not isinstance(row, dict) or not isinstance(row.get(name), str) or not row[name].strip():
                raise InputError("missing or not a non-empty string", path=str(path), line=line, field=name)
        if "####" not in row["answer"]:
            raise InputError("answer has no '#### <number>' final line", path=str(path), line=line, field="answer")
        target = normalize_number(row["answer"].split("####")[-1])
        items.append(_item("gsm8k", row["question"].strip(), row["answer"], (target,)))
    return items


def read_truthfulqa(data: str) -> list[ProfileItem]:
    from seapo.evaluate.loaders import load_truthfulqa, read_truthfulqa_csv
    from seapo.evaluate.tasks import get_task

    if data == HUB_TRUTHFULQA:
        rows, categories = load_truthfulqa(get_task("truthfulqa_mc"), None).items, []
    else:
        rows = read_truthfulqa_csv(data)  # checks every row, naming file, line and field
        with open(data, encoding="utf-8", newline="") as f:
            categories = [(r.get("Category") or "").strip() for r in csv.DictReader(f)]
    return [_item(categories[i] if i < len(categories) and categories[i] else "truthfulqa", r["question"],
                  r["best"], tuple(r["true"]), tuple(r["false"])) for i, r in enumerate(rows)]


def read_prepared(path: str | Path) -> list[ProfileItem]:
    from seapo.data.schema import read_records

    return [_item(str(r.source.get("dataset") or "records"), r.question, r.response,
                  prompt=tuple((m["role"], m["content"]) for m in r.prompt)) for r in read_records(path)]


def load_items(data: str, fmt: DataFormat = "auto", limit: int | None = None) -> tuple[list[ProfileItem], str]:
    """The items of ``data`` (first ``limit``; the same prompt twice is one item) and the format read."""
    kind = detect_format(data) if fmt == "auto" else fmt
    items = {"gsm8k": read_gsm8k, "truthfulqa": read_truthfulqa, "records": read_prepared}[kind](data)
    unique = list({it.id: it for it in items}.values())
    return (unique[:limit] if limit else unique), kind
