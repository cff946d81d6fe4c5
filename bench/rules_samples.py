"""Write docs/rules_samples.md: 40 rules negatives per error type from the UltraFeedback sample,
drawn with a fixed seed, each as positive span -> negative span with its perturbation, and the
hand judgement recorded for it in bench/rules_samples_judged_SEED.json (when there is one).

    python bench/rules_samples.py [--shared ../shared/data] [--seed 31337] [--n 40]

Records are drawn in a seeded order and the first 40 that get a negative of the type are kept
(a record without, for example, any reasoning to break gets no logic negative and is skipped,
and counted). The judgement file maps "type/index" to {"error": bool, "grammatical": bool,
"note": str}.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from seapo.inject.error_types import ErrorType
from seapo.inject.rules import VERSION, RulesInjector

REPO = Path(__file__).resolve().parents[1]
JUDGED = REPO / "bench" / "rules_samples_judged_{seed}.json"


def _clip(text: str, limit: int = 260) -> str:
    text = text.replace("\n", " ⏎ ").replace("|", "\\|")
    return text if len(text) <= limit else text[:limit // 2] + " … " + text[-limit // 2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--seed", type=int, default=31337, help="draws the records (not used in development)")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--out", default=str(REPO / "docs" / "rules_samples.md"))
    parser.add_argument("--type-seed", action="append", default=[], metavar="TYPE=SEED",
                        help="draw one type with another seed (a fresh held-out draw after the rules of that type "
                             "were changed on what the default seed showed)")
    args = parser.parse_args()
    type_seeds = {k: int(v) for k, v in (x.split("=", 1) for x in args.type_seed)}

    rows = [json.loads(line) for line in open(Path(args.shared) / "source" / "ultrafeedback" / "train_1k.jsonl",
                                              encoding="utf-8")]
    rows = [r for r in rows if r["chosen"].strip()]

    def draw(seed: int) -> tuple[list[int], dict]:
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        path = Path(str(JUDGED).format(seed=seed))
        return order, json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    injector = RulesInjector()
    out = [f"# Rules injector samples (v{VERSION})", "",
           f"{args.n} negatives per error type from the UltraFeedback 1k sample "
           f"(`/work/shared/data/source/ultrafeedback/train_1k.jsonl`), records drawn with seed {args.seed}"
           f"{''.join(f' ({t}: seed {v})' for t, v in type_seeds.items())}; "
           "made by `python bench/rules_samples.py`. Each row: the positive's span -> the negative's span "
           "(with up to 60 characters of context), the perturbation, and the hand judgement "
           "(`error`: a real error of the named type; `grammar`: the edited sentence reads as grammatical "
           "English). How they were judged: see the end of this file.", ""]
    totals = {}
    for et in ErrorType:
        seed = type_seeds.get(et.value, args.seed)
        order, judged = draw(seed)
        picked = []
        skipped = 0
        for i in order:
            row = rows[i]
            key = f"uf-{i}"
            inj = injector.inject_text(row["chosen"], et, key=key, question=row["prompt"])
            if inj.text is None:
                skipped += 1
                continue
            picked.append((i, row, inj))
            if len(picked) >= args.n:
                break
        out += [f"## {et.value}", "",
                f"Seed {seed}. {skipped} records drawn before these had no {et.value} negative.", "",
                "| # | row | perturbation | positive -> negative | error | grammar | note |",
                "| ---: | ---: | --- | --- | :---: | :---: | --- |"]
        err = gram = seen = 0
        for n, (i, row, inj) in enumerate(picked, 1):
            pos = row["chosen"]
            spans = []
            for e in inj.details["edits"]:
                s, t = e["span"]
                before = pos[max(0, s - 60):s]
                after = pos[t:t + 30]
                spans.append(f"{_clip(before, 60)}**[{_clip(e['original'])} → {_clip(e['replacement'])}]**"
                             f"{_clip(after, 30)}")
            j = judged.get(f"{et.value}/{n}")
            if j:
                seen += 1
                err += j["error"]
                gram += j["grammatical"]
            mark = (lambda v: "yes" if v else "**no**") if j else (lambda v: "?")
            out.append(f"| {n} | {i} | {', '.join(inj.details['perturbations'])} | {' ⋯ '.join(spans)} | "
                       f"{mark(j and j['error'])} | {mark(j and j['grammatical'])} | {(j or {}).get('note', '')} |")
        totals[et.value] = (err, gram, seen, len(picked))
        out.append("")
    out += ["## Totals", "", "| type | real error of the type | grammatical | judged | sampled |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for et, (err, gram, seen, n) in totals.items():
        out.append(f"| {et} | {err}/{seen} | {gram}/{seen} | {seen} | {n} |")
    out += ["", "## How they were judged", "", (REPO / "bench" / "rules_samples_method.md").read_text(
        encoding="utf-8").strip() if (REPO / "bench" / "rules_samples_method.md").exists() else "(not judged yet)"]
    Path(args.out).write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v[0]}/{v[2]} errors, {v[1]}/{v[2]} grammatical"
                                            for k, v in totals.items()))


if __name__ == "__main__":
    main()
