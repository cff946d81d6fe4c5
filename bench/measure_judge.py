"""Precision and recall per error type of a judge, on a labelled set built with the rules injector.

    python bench/measure_judge.py [--gsm8k N] [--ultrafeedback N] [--judge reference|llm]
                                  [--judge-model M] [--judge-set KEY=VALUE ...] [--json OUT]

The labelled set, from ``source/gsm8k/train.jsonl`` (first N) and
``source/ultrafeedback/train_1k.jsonl`` (first N with a non-empty ``chosen``):

* **negatives of known type**: the rules injector's negative of each type for each positive, judged
  against that positive. Label: its type present. The other two types are counted as absent (the
  positive is taken as clean and a perturbation adds its own type only; a negation can arguably
  also be a logic error, so precision is a lower bound);
* **clean**: each positive judged against itself (all types absent), and, for GSM8K, each solution
  judged against its ``####`` number only (no reference text: correctness absent);
* **unlabelled extra**: UltraFeedback's own ``rejected`` response judged against ``chosen``: its
  findings are counted, not scored (nobody labelled its errors).

Every judge is measured twice: with the rules negatives' perturbation records (what ``seapo inject``
judges for a rules negative: the evidence makes them trivially ``present``) and WITHOUT them (the
records stripped: the honest figure for a negative that is not from the rules injector, e.g. the
LLM injector's). Precision = present on a labelled item of that type / all ``present``; recall =
``present`` / items of that type; ``absent`` on an item of that type is a false "absent" (a real
error dropped) and is counted on its own.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seapo.config.base import set_dotted
from seapo.inject.error_types import ALL_ERROR_TYPES, ErrorType
from seapo.inject.rules import RulesInjector
from seapo.judge import JUDGES, Judge, JudgeItem
from seapo.judge.combined import make_judge

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "source"


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def build(n_gsm8k: int, n_uf: int) -> list[tuple[str, str, JudgeItem]]:
    """(source, label, item): label is an error type, ``clean``, ``clean-answer`` or ``rejected``."""
    injector = RulesInjector()
    rows: list[tuple[str, str, str, dict[str, Any]]] = []
    for i, r in enumerate(_jsonl(DATA / "gsm8k" / "train.jsonl")):
        if i >= n_gsm8k:
            break
        rows.append(("gsm8k", r["question"], r["answer"], r))
    for r in _jsonl(DATA / "ultrafeedback" / "train_1k.jsonl"):
        if sum(1 for s, *_ in rows if s == "ultrafeedback") >= n_uf:
            break
        if r["chosen"].strip():
            rows.append(("ultrafeedback", r["prompt"], r["chosen"], r))
    out: list[tuple[str, str, JudgeItem]] = []
    for k, (source, question, positive, row) in enumerate(rows):
        for et in ALL_ERROR_TYPES:
            inj = injector.inject_text(positive, et, key=f"{source}:{k}", question=question)
            if inj.text is not None:
                item = JudgeItem(question, inj.text, positive, claimed=et, evidence=inj.details)
                out.append((source, et.value, item))
        out.append((source, "clean", JudgeItem(question, positive, positive)))
        if source == "gsm8k":
            number = positive.rsplit("####", 1)[1].strip()
            out.append((source, "clean-answer", JudgeItem(question, positive, None, (number,))))
        elif row.get("rejected", "").strip():
            out.append((source, "rejected", JudgeItem(question, row["rejected"], positive)))
    return out


def strip(item: JudgeItem) -> JudgeItem:
    return JudgeItem(item.question, item.response, item.reference, item.correct_answers, item.incorrect_answers,
                     item.claimed, None)


def score(labelled: list[tuple[str, str, JudgeItem]], verdicts: list) -> dict[str, Any]:
    """Per source ('all' too) and type: tp, fp, fn_absent, fn_unknown, precision, recall; and the
    clean items' and the unlabelled items' findings."""
    table: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for (source, label, _), v in zip(labelled, verdicts, strict=True):
        for src in (source, "all"):
            for t in ALL_ERROR_TYPES:
                f = v.finding(t)
                c = table[src][t.value]
                if label == "rejected":
                    c[f"rejected_{f}"] += 1
                elif label == "clean-answer" and t is not ErrorType.CORRECTNESS:
                    continue  # only the answer is known: no claim about logic or hallucination
                elif label == t.value:
                    c["tp" if f == "present" else f"fn_{f}"] += 1
                else:
                    c["fp" if f == "present" else f"tn_{f}"] += 1
                    if label.startswith("clean"):
                        c[f"clean_{f}"] += 1
    out: dict[str, Any] = {}
    for src, types in table.items():
        out[src] = {}
        for t, c in types.items():
            pos = c["tp"] + c["fn_absent"] + c["fn_unknown"]
            called = c["tp"] + c["fp"]
            out[src][t] = dict(c) | {"precision": c["tp"] / called if called else None,
                                     "recall": c["tp"] / pos if pos else None, "positives": pos}
    return out


def _fmt(x: float | None) -> str:
    return "  n/a" if x is None else f"{x:5.1%}"


def report(name: str, result: dict[str, Any]) -> None:
    print(f"\n{name}")
    print(f"  {'source':<14}{'type':<14}{'prec':>7}{'recall':>8}{'n':>6}{'false absent':>14}{'unknown':>9}"
          f"{'FP':>5}{'clean absent':>14}{'rejected P/A/U':>17}")
    for src in ("gsm8k", "ultrafeedback", "all"):
        for t in (et.value for et in ALL_ERROR_TYPES):
            c = result.get(src, {}).get(t)
            if not c:
                continue
            clean = sum(c.get(f"clean_{f}", 0) for f in ("present", "absent", "unknown"))
            rej = "/".join(str(c.get(f"rejected_{f}", 0)) for f in ("present", "absent", "unknown"))
            print(f"  {src:<14}{t:<14}{_fmt(c['precision']):>7}{_fmt(c['recall']):>8}{c['positives']:>6}"
                  f"{c.get('fn_absent', 0):>14}{c.get('fn_unknown', 0):>9}{c.get('fp', 0):>5}"
                  f"{c.get('clean_absent', 0):>8}/{clean:<5}{rej:>17}")


def make(args: argparse.Namespace) -> Judge:
    llm = None
    if args.judge == "llm":
        if "llm" not in JUDGES:
            raise SystemExit("no judge is registered as 'llm' yet (the LLM judge lands in seapo.judge.llm)")
        cls = JUDGES.get("llm")
        settings: dict[str, Any] = {}
        if args.judge_model:
            set_dotted(settings, "backend.model", args.judge_model)
        for pair in args.judge_set:
            key, _, value = pair.partition("=")
            set_dotted(settings, key, json.loads(value) if value[:1] in "[{0123456789tfn\"" else value)
        llm = cls(cls.config_class.model_validate(settings))
    judge = make_judge(args.judge, llm=llm)
    if judge is None:
        raise SystemExit("--judge none measures nothing")
    return judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gsm8k", type=int, default=300, help="GSM8K problems (first N; default 300)")
    parser.add_argument("--ultrafeedback", type=int, default=300, help="UltraFeedback rows (first N; default 300)")
    parser.add_argument("--judge", default="reference", choices=("reference", "llm"))
    parser.add_argument("--judge-model", default=None, help="the LLM judge's model (--judge llm)")
    parser.add_argument("--judge-set", action="append", default=[], metavar="KEY=VALUE",
                        help="any LLM judge setting, dotted (repeatable)")
    parser.add_argument("--json", default=None, help="write the figures here too")
    args = parser.parse_args()

    labelled = build(args.gsm8k, args.ultrafeedback)
    counts = Counter((s, label) for s, label, _ in labelled)
    sizes = {f"{s}/{label}": n for (s, label), n in sorted(counts.items())}
    print(f"labelled set: {len(labelled)} items: " + ", ".join(f"{k} {n}" for k, n in sizes.items()))
    judge = make(args)
    results: dict[str, Any] = {"judge": judge.fingerprint(), "items": sizes}
    with judge:
        for name, items in (("with rules evidence", [it for *_, it in labelled]),
                            ("without rules evidence (records stripped)", [strip(it) for *_, it in labelled])):
            start = time.perf_counter()
            verdicts = judge.judge(items)
            elapsed = time.perf_counter() - start
            result = score(labelled, verdicts)
            results[name] = result
            report(f"{judge.fingerprint()}: {name} ({len(items)} verdicts in {elapsed:.1f} s)", result)
    print("\nFP: present on a clean item or a negative of another type; 'clean absent': clean items judged "
          "absent / clean items; rejected: UltraFeedback's own rejected answers (unlabelled).")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
