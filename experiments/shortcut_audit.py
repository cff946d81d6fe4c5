"""Shortcut audit: can a shallow model tell negatives from positives by surface cues alone?

For each shared data set, the rules injector (``--strategy all``) makes negatives; a word 1-3-gram
logistic regression is trained on 70% of the records (positive = 0, negative = 1) and, on the other
30%, we count how often it scores a pair's negative above its own positive. 0.5 means the text
gives no shortcut; 1.0 means every negative is recognisable without reading for errors. The same
classifier on the data set's own chosen vs rejected answers is the reference. Length figures: how
often the negative is the longer text, and the mean length ratio negative / positive.

This is the measurement of issue 11 (which builds it into every run); it needs scikit-learn:

    .venv/bin/pip install scikit-learn
    .venv/bin/python experiments/shortcut_audit.py [--shared ../shared/data] [--gsm8k-rows 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path
from statistics import mean

REPO = Path(__file__).resolve().parents[1]


def _pairs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def above_rate(pairs: list[tuple[str, str, str]], seed: int = 0) -> float:
    """Train on 70% of the records, return how often a test negative scores above its positive.

    ``pairs``: (record id, positive, negative)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    ids = sorted({rid for rid, _, _ in pairs})
    random.Random(seed).shuffle(ids)
    train_ids = set(ids[:int(0.7 * len(ids))])
    train = [p for p in pairs if p[0] in train_ids]
    test = [p for p in pairs if p[0] not in train_ids]
    texts = [t for _, pos, neg in train for t in (pos, neg)]
    labels = [y for _ in train for y in (0, 1)]
    vectorizer = TfidfVectorizer(ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(max_iter=2000, C=4.0).fit(vectorizer.fit_transform(texts), labels)
    pos = classifier.predict_proba(vectorizer.transform([p for _, p, _ in test]))[:, 1]
    neg = classifier.predict_proba(vectorizer.transform([n for _, _, n in test]))[:, 1]
    return sum(float(n > p) for p, n in zip(pos, neg, strict=True)) / len(test)


def audit(name: str, records: Path, out: Path) -> list[str]:
    import seapo

    result = seapo.inject(records, out, seapo.InjectConfig(injector="rules", strategy="all", show_progress=False))
    rows = []
    pairs = _pairs(result.pairs_path)
    for et in ("correctness", "logic", "hallucination"):
        mine = [(p["record_id"], p["chosen"]["content"], p["rejected"]["content"]) for p in pairs
                if p["error_type"] == et]
        longer = mean(float(len(n) > len(p)) for _, p, n in mine)
        ratio = mean(len(n) / max(1, len(p)) for _, p, n in mine)
        rows.append(f"| {name} | {et} | {len(mine)} | {above_rate(mine):.2f} | {longer:.2f} | {ratio:.2f} |")
    own = [(r["id"], r["response"], r["rejected"]) for r in map(json.loads, records.read_text().splitlines())
           if r.get("rejected")]
    if len(own) >= 20:
        longer = mean(float(len(n) > len(p)) for _, p, n in own)
        ratio = mean(len(n) / max(1, len(p)) for _, p, n in own)
        rows.append(f"| {name} | the data set's own rejected | {len(own)} | {above_rate(own):.2f} | "
                    f"{longer:.2f} | {ratio:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--gsm8k-rows", type=int, default=1000)
    args = parser.parse_args()
    import seapo

    shared = Path(args.shared)
    sources = {"dpo_en_demo": (shared / "preference" / "dpo_en_demo.json", None),
               "ultrafeedback_1k": (shared / "source" / "ultrafeedback" / "train_1k.jsonl", None),
               "gsm8k": (shared / "source" / "gsm8k" / "train.jsonl", args.gsm8k_rows)}
    print("| data | negatives | pairs | negative scored above its positive | negative longer | length ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, limit) in sources.items():
            records = Path(tmp) / f"{name}.jsonl"
            seapo.prepare(path, out=records, limit=limit, progress=False)
            for row in audit(name, records, Path(tmp) / name):
                print(row, flush=True)


if __name__ == "__main__":
    main()
