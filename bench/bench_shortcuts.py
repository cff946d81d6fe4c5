"""Shortcut audit of the rules injector: can a shallow model tell its negatives from positives?

    python bench/bench_shortcuts.py [--shared ../shared/data] [--gsm8k-rows 1000] [--seed 0]

For each data set (the UltraFeedback 1k sample, the LLaMA-Factory DPO demo, the first GSM8K
training rows) and error type, the rules injector makes one negative per record (attempts 0, 1, 2
until the verifier passes, as the pipeline's fallback does). A word 1-3-gram logistic regression
(TF-IDF, the classifier of issue 11) is trained on the pairs of 70% of the records and, on the other
30%, we count how often it scores a pair's negative above its own positive ("pairwise"; 0.5 = no
shortcut, 1.0 = every negative recognisable without reading for errors), with a 95% bootstrap
interval. "cross": trained on all pairs of one data set, tested on every other one (the worst
figure is printed). Also: the median length ratio negative/positive (characters), the share of
pairs where the negative is the longer text, the n-grams the classifier finds most typical of
negatives, and the injector's speed (responses per CPU-second, one core). Peers: the goal of 0.65
(issue 11) and the data set's own chosen vs rejected answers where it has them.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

from seapo.data.schema import Record
from seapo.inject.error_types import ErrorType
from seapo.inject.rules import RulesInjector, RulesInjectorConfig
from seapo.inject.verify import Verifier

REPO = Path(__file__).resolve().parents[1]
GOAL_ACCURACY = 0.65
GOAL_PER_S = 2000.0
Pair = tuple[str, str, str]
"""(record id, positive, negative)"""


def load_datasets(shared: Path, gsm8k_rows: int) -> dict[str, list[Record]]:
    """The three shared data sets as records (question + positive response)."""
    def rec(question: str, response: str, rejected: str | None = None) -> Record:
        return Record(prompt=[{"role": "user", "content": question}], response=response, rejected=rejected)

    uf = []
    with open(shared / "source" / "ultrafeedback" / "train_1k.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["chosen"].strip():
                uf.append(rec(row["prompt"], row["chosen"], row["rejected"]))
    dpo = []
    for row in json.loads((shared / "preference" / "dpo_en_demo.json").read_text(encoding="utf-8")):
        question = next(t["value"] for t in reversed(row["conversations"]) if t["from"] == "human")
        dpo.append(rec(question, row["chosen"]["value"], row["rejected"]["value"]))
    gsm = []
    with open(shared / "source" / "gsm8k" / "train.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            gsm.append(rec(row["question"], row["answer"]))
            if len(gsm) >= gsm8k_rows:
                break
    return {"ultrafeedback": uf, "dpo_demo": dpo, "gsm8k": gsm}


def make_pairs(injector: RulesInjector, records: list[Record], error_type: ErrorType,
               verifier: Verifier) -> tuple[list[Pair], float, int]:
    """(pairs, CPU seconds spent in the injector, records without a negative)."""
    pairs: list[Pair] = []
    spent = 0.0
    failed = 0
    for r in records:
        for attempt in range(3):
            start = time.process_time()
            inj = injector.inject_text(r.response, error_type, key=r.id, attempt=attempt, question=r.question)
            spent += time.process_time() - start
            if inj.text is not None and verifier.check(r.response, inj.text).passed:
                pairs.append((r.id, r.response, inj.text))
                break
        else:
            failed += 1
    return pairs, spent, failed


def _fit(pairs: Iterable[Pair]):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    pairs = list(pairs)
    vectorizer = TfidfVectorizer(ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    x = vectorizer.fit_transform([t for _, p, n in pairs for t in (p, n)])
    y = [label for _ in pairs for label in (0, 1)]
    return vectorizer, LogisticRegression(max_iter=2000, C=4.0).fit(x, y)


def _wins(model, pairs: list[Pair]) -> list[float]:
    vectorizer, classifier = model
    pos = classifier.decision_function(vectorizer.transform([p for _, p, _ in pairs]))
    neg = classifier.decision_function(vectorizer.transform([n for _, _, n in pairs]))
    return [1.0 if b > a else 0.5 if b == a else 0.0 for a, b in zip(pos, neg, strict=True)]


def split_by_record(pairs: list[Pair], seed: int) -> tuple[list[Pair], list[Pair]]:
    ids = sorted({rid for rid, _, _ in pairs})
    random.Random(seed).shuffle(ids)
    train_ids = set(ids[:int(0.7 * len(ids))])
    return [p for p in pairs if p[0] in train_ids], [p for p in pairs if p[0] not in train_ids]


def pairwise(pairs: list[Pair], seed: int) -> tuple[float, float, float, list[str], object]:
    """Accuracy on the held-out 30% of records, its 95% bootstrap interval, the top negative
    n-grams, and the model trained on the 70%."""
    train, test = split_by_record(pairs, seed)
    model = _fit(train)
    wins = _wins(model, test)
    rng = random.Random(seed)
    boots = sorted(statistics.fmean(rng.choices(wins, k=len(wins))) for _ in range(400))
    vectorizer, classifier = model
    names = vectorizer.get_feature_names_out()
    order = classifier.coef_[0].argsort()[::-1][:6]
    top = [f"{names[i]}({classifier.coef_[0][i]:.1f})" for i in order]
    return statistics.fmean(wins), boots[10], boots[389], top, model


def lengths(pairs: list[Pair]) -> tuple[float, float]:
    """(median length ratio negative/positive, share of pairs with the longer negative)."""
    ratios = [len(n) / max(1, len(p)) for _, p, n in pairs]
    return statistics.median(ratios), statistics.fmean(float(len(n) > len(p)) for _, p, n in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--gsm8k-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="injector seed (the split uses it too)")
    parser.add_argument("--types", default=",".join(t.value for t in ErrorType))
    args = parser.parse_args()

    data = load_datasets(Path(args.shared), args.gsm8k_rows)
    injector = RulesInjector(RulesInjectorConfig(seed=args.seed))
    verifier = Verifier()
    print("| type | data | pairs | failed | pairwise [95% CI] | cross (worst: train->test) | median ratio | "
          "neg longer | resp/s | top negative n-grams |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    total_n = 0
    total_s = 0.0
    worst = 0.0
    for et in (ErrorType(t) for t in args.types.split(",")):
        made = {name: make_pairs(injector, recs, et, verifier) for name, recs in data.items()}
        models = {name: _fit(pairs) for name, (pairs, _, _) in made.items()}
        for name, (pairs, spent, failed) in made.items():
            total_n += len(data[name])
            total_s += spent
            acc, lo, hi, top, _ = pairwise(pairs, args.seed)
            cross = [(statistics.fmean(_wins(models[other], pairs)), other) for other in data if other != name]
            cross_acc, cross_from = max(cross)
            ratio, longer = lengths(pairs)
            worst = max(worst, acc, cross_acc)
            print(f"| {et.value} | {name} | {len(pairs)} | {failed} | {acc:.2f} [{lo:.2f}, {hi:.2f}] | "
                  f"{cross_acc:.2f} ({cross_from}->{name}) | {ratio:.3f} | {longer:.2f} | "
                  f"{len(data[name]) / max(spent, 1e-9):.0f} | {', '.join(top)} |", flush=True)
    for name, recs in data.items():
        own = [(r.id, r.response, r.rejected) for r in recs if r.rejected]
        if own:
            acc, lo, hi, top, _ = pairwise(own, args.seed)
            ratio, longer = lengths(own)
            print(f"| the data set's own rejected | {name} | {len(own)} | - | {acc:.2f} [{lo:.2f}, {hi:.2f}] | - | "
                  f"{ratio:.3f} | {longer:.2f} | - | {', '.join(top)} |")
    rate = total_n / max(total_s, 1e-9)
    print(f"\nworst pairwise/cross accuracy {worst:.2f} (goal <= {GOAL_ACCURACY}: "
          f"{'met' if worst <= GOAL_ACCURACY else 'NOT met'}); injector speed {rate:.0f} responses/s on one "
          f"core, attempts included ({rate / GOAL_PER_S:.2f}x the 2,000/s goal)")


if __name__ == "__main__":
    main()
