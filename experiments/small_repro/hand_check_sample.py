"""Hand check of the study's SeaPO negatives: draw the sample, print it for reading, summarize the verdicts.

    python experiments/small_repro/hand_check_sample.py                      # print the sample to judge
    python experiments/small_repro/hand_check_sample.py --verdicts FILE      # write results/hand_check.json

The sample: per split (the tune's mixed training pairs, the held-out SeaPO pairs) and per error type,
20 pairs (all of them where fewer exist), drawn with ``--seed`` (2026120301) from the pairs sorted by
id, then shuffled together so the types and splits are judged in mixed order. Each pair's edits are
found by diffing chosen vs rejected on words (difflib), not from the injector's own metadata, and
printed with 150 characters before and 60 after, beside the question's first 200 characters. The
split is not printed. Verdicts follow bench/rules_samples_method.md; FILE is JSON lines of
``{"id", "error", "grammatical", "note"}``, one per printed pair; a note starting "marginal:" marks an
error the method counts that a stricter reader might not (``error_clear`` leaves those out). Light: no
model, no torch. ``--runs`` points at the study's runs/small_repro (not committed: the pairs are run output).
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import json
import math
import random
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNS = REPO / "runs" / "small_repro"
SPLITS = {"train": Path("tune/inject/pairs.jsonl"), "heldout": Path("data/heldout-seapo/pairs.jsonl")}
ERROR_TYPES = ("correctness", "logic", "hallucination")
PER_CELL = 20
SEED = 2026120301
BEFORE, AFTER, QUESTION = 150, 60, 200
MARGINAL = "marginal:"  # a note starting so: counted as an error by the method, but a stricter reader might not


def load_pairs(runs: Path) -> dict[str, list[dict[str, Any]]]:
    """The pairs of each split, sorted by id so the draw does not depend on file order."""
    out = {}
    for split, rel in SPLITS.items():
        path = runs / rel
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        out[split] = sorted(rows, key=lambda row: row["id"])
    return out


def draw(pairs: dict[str, list[dict[str, Any]]], seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Up to PER_CELL pairs per split and type, then all shuffled together."""
    rng = random.Random(seed)
    sample = []
    for split, rows in pairs.items():
        for error_type in ERROR_TYPES:
            of_type = [row for row in rows if row["error_type"] == error_type]
            sample += [(split, row) for row in rng.sample(of_type, min(PER_CELL, len(of_type)))]
    rng.shuffle(sample)
    return sample


def _text(message: Any) -> str:
    return message["content"] if isinstance(message, dict) else str(message)


def question(row: dict[str, Any]) -> str:
    prompt = row["prompt"]
    if isinstance(prompt, list):
        users = [m for m in prompt if m.get("role") == "user"] or prompt
        return _text(users[-1])
    return str(prompt)


def edits(chosen: str, rejected: str) -> list[str]:
    """Each word-level difference, shown as ...before [-old-]{+new+} after... in the chosen text."""
    a, b = re.findall(r"\S+|\s+", chosen), re.findall(r"\S+|\s+", rejected)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    shown = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start = len("".join(a[:i1]))
        before = chosen[max(0, start - BEFORE):start]
        after = "".join(a[i2:])[:AFTER]
        old, new = "".join(a[i1:i2]), "".join(b[j1:j2])
        shown.append(f"...{before}[-{old[:400]}-]{{+{new[:400]}+}}{after}...")
    return shown


def dump(sample: list[tuple[str, dict[str, Any]]]) -> None:
    for n, (_split, row) in enumerate(sample, 1):
        q = question(row)[:QUESTION].replace("\n", " / ")
        print(f"=== {n}  {row['id']}  ({row['error_type']})\nQ: {q}")
        for edit in edits(_text(row["chosen"]), _text(row["rejected"])):
            print("  * " + edit.replace("\n", " / "))
        print()


def wilson(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """95% Wilson score interval of k successes in n."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 3), round(centre + half, 3)]


def summarize(sample: list[tuple[str, dict[str, Any]]], verdicts_path: Path, seed: int) -> dict[str, Any]:
    verdicts = {}
    for lineno, line in enumerate(verdicts_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        verdict = json.loads(line)
        for key, kind in (("id", str), ("error", bool), ("grammatical", bool), ("note", str)):
            if not isinstance(verdict.get(key), kind):
                raise SystemExit(f"{verdicts_path}:{lineno}: field {key!r} must be {kind.__name__}")
        verdicts[verdict["id"]] = verdict
    drawn = {row["id"] for _, row in sample}
    if set(verdicts) != drawn:
        raise SystemExit(f"{verdicts_path}: verdicts missing for {sorted(drawn - set(verdicts))}, "
                         f"not in the sample: {sorted(set(verdicts) - drawn)}")
    rows, summary = {}, {}
    for n, (split, row) in enumerate(sample, 1):
        verdict = verdicts[row["id"]]
        rows[row["id"]] = {"order": n, "split": split, "error_type": row["error_type"],
                           "perturbations": row.get("details", {}).get("perturbations", []),
                           "error": verdict["error"], "grammatical": verdict["grammatical"], "note": verdict["note"]}
    for split in SPLITS:
        summary[split] = {}
        for error_type in ERROR_TYPES:
            cell = [r for r in rows.values() if r["split"] == split and r["error_type"] == error_type]
            n, err, gram = len(cell), sum(r["error"] for r in cell), sum(r["grammatical"] for r in cell)
            clear = err - sum(r["error"] and r["note"].startswith(MARGINAL) for r in cell)
            summary[split][error_type] = {"n": n, "error": err, "error_wilson95": wilson(err, n),
                                          "error_clear": clear, "error_clear_wilson95": wilson(clear, n),
                                          "grammatical": gram, "grammatical_wilson95": wilson(gram, n)}
    return {"method": "bench/rules_samples_method.md (definitions of error and grammatical, the strict rules); "
                      "edits from a word diff of chosen vs rejected, 150 characters before and 60 after, the "
                      "question's first 200 characters, the split hidden; types and splits judged in shuffled order",
            "seed": seed, "judged_by": "issue 16 helper session (did not write the rules injector)",
            "date": datetime.date.today().isoformat(), "rules_version": _rules_version(),
            "sources": {split: str(Path("runs/small_repro") / rel) for split, rel in SPLITS.items()},
            "rows": rows, "summary": summary}


def _rules_version() -> int:
    text = (REPO / "src" / "seapo" / "inject" / "rules" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"^VERSION = (\d+)", text, re.M)
    if match is None:
        raise SystemExit("src/seapo/inject/rules/__init__.py: no VERSION line")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=RUNS, help="the study's runs/small_repro folder")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--verdicts", type=Path, help="JSON lines of verdicts: write results/hand_check.json")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "hand_check.json")
    args = parser.parse_args(argv)
    sample = draw(load_pairs(args.runs), args.seed)
    if args.verdicts is None:
        dump(sample)
        return
    result = summarize(sample, args.verdicts, args.seed)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    json.dump(result["summary"], sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
