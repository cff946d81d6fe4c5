"""Print 20 rules-v3 logic negatives for reading by hand: the first 14 UltraFeedback records (seed 777
order, as session 5's look at v2) that get a logic negative, and 6 GSM8K premise removals (the site v3
kept). The judgements of the 2026-12-02 reading are in docs/rules.md ("Reading v3's logic negatives").

    .venv/bin/python experiments/rules_v3_logic_look.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from seapo.inject.error_types import ErrorType
from seapo.inject.rules import RulesInjector, RulesInjectorConfig

REPO = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    source = Path(parser.parse_args().shared) / "source"
    injector = RulesInjector()
    uf = [r for r in _rows(source / "ultrafeedback" / "train_1k.jsonl") if r.get("chosen")]
    random.Random(777).shuffle(uf)
    shown = 0
    for r in uf:
        got = injector.inject_text(r["chosen"], ErrorType.LOGIC, key=str(r.get("prompt_id", shown)),
                                   question=r["prompt"])
        if got.text is None:
            continue
        shown += 1
        for e in got.details["edits"]:
            before = r["chosen"][max(0, e["span"][0] - 80):e["span"][0]].replace("\n", "⏎")
            print(f"#{shown} {e['perturbation']}: …{before}[[{e['original'][:160]!r} -> {e['replacement'][:160]!r}]]")
        if shown >= 14:
            break
    premises = RulesInjector(RulesInjectorConfig(logic=("premise_removed",)))
    found = 0
    for k, r in enumerate(_rows(source / "gsm8k" / "train.jsonl")[:400]):
        got = premises.inject_text(r["answer"], ErrorType.LOGIC, key=str(k), question=r["question"])
        if got.text is None:
            continue
        found += 1
        e = got.details["edits"][0]
        after = r["answer"][e["span"][1]:][:140].replace("\n", "⏎")
        print(f"G{found} premise_removed: removed {e['original'][:120]!r} | next: {after!r}")
        if found >= 6:
            break


if __name__ == "__main__":
    main()
