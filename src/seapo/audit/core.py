"""The audit itself: :func:`audit_pairs` over (record, positive, negative, error type) pairs.

Method (docs/audit.md): the records are split at random (seeded) into training and test records,
so every pair of one record -- its positive is shared by all its error types -- falls on one side.
Each text becomes hashed word 1-3-gram counts (sublinear tf, l2-normalised); a logistic regression
learns negative (1) vs positive (0) on the training records' texts, per error type and over all
pairs. On each test pair it scores the negative and its own positive: the **pairwise accuracy** is
how often the negative scores higher (a tie counts one half). 0.5 means the surface text gives no
cue; 1.0 means every negative is recognisable without reading for errors. The 95% interval is a
percentile bootstrap over test records (a record's pairs are resampled together).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import mean, median
from typing import TYPE_CHECKING, Any

from seapo.audit.config import AuditConfig

if TYPE_CHECKING:
    import numpy as np
    from scipy.sparse import csr_matrix

TYPE_ORDER = ("correctness", "logic", "hallucination")
"""seapo's error types (seapo.inject.error_types, not imported: the audit stays below inject), listed first."""

OVERALL = "overall"
"""The key of the audit over every pair, whatever its type."""

NOT_ENOUGH = "not enough pairs"
"""The status of a type with fewer test records than ``min_test_records``."""

TOKEN_PATTERN = r"(?u)\b\w+(?:'\w+)?\b"
"""Words, single letters and digits included, contractions kept whole ("aren't" is one token: the
negation rule's contractions were one of the strongest cues found)."""


@dataclass(frozen=True)
class AuditPair:
    """One pair to audit."""

    group: str
    """The record it comes from: every pair of one record falls on one side of the split."""
    positive: str
    negative: str
    error_type: str | None = None
    """The named error type (None for a data set's own chosen vs rejected: audited only overall)."""


@dataclass
class TypeAudit:
    """The audit of one error type (or of every pair: ``overall``)."""

    pairs: int
    records: int
    train_records: int
    test_records: int
    test_pairs: int
    status: str
    """``ok``, or :data:`NOT_ENOUGH` (then ``accuracy`` and ``interval`` are None)."""
    accuracy: float | None
    """Share of test pairs whose negative scores above its own positive (ties count one half)."""
    interval: list[float] | None
    """95% percentile-bootstrap interval of ``accuracy`` over test records."""
    length: dict[str, float | None]
    """Character lengths over all the scope's pairs: ``median_ratio`` and ``mean_ratio`` of negative /
    positive, ``negative_longer`` (share where the negative is longer), ``negative_shorter``."""
    top_ngrams: dict[str, list[dict[str, Any]]]
    """The most predictive n-grams: ``negative`` (their presence marks a negative) and ``positive``."""
    warning: str | None
    """Set when ``accuracy`` is above the configured ``warn_above``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditReport:
    """What :func:`audit_pairs` measured."""

    pairs: int
    records: int
    per_type: dict[str, TypeAudit]
    overall: TypeAudit
    settings: dict[str, Any]
    wall_time_s: float
    method: str = ("word 1-{n}-gram hashed counts, logistic regression (SGD), split by record "
                   "({test:.0%} test); pairwise accuracy with a 95% bootstrap interval over test records")
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "records": self.records, "method": self.method,
                "overall": self.overall.to_dict(),
                "per_type": {name: audit.to_dict() for name, audit in self.per_type.items()},
                "warnings": self.warnings, "settings": self.settings, "wall_time_s": self.wall_time_s}


def _length_stats(pairs: Sequence[AuditPair]) -> dict[str, float | None]:
    if not pairs:
        return {"median_ratio": None, "mean_ratio": None, "negative_longer": None, "negative_shorter": None}
    ratios = [len(p.negative) / max(1, len(p.positive)) for p in pairs]
    return {"median_ratio": round(median(ratios), 4), "mean_ratio": round(mean(ratios), 4),
            "negative_longer": round(mean(float(len(p.negative) > len(p.positive)) for p in pairs), 4),
            "negative_shorter": round(mean(float(len(p.negative) < len(p.positive)) for p in pairs), 4)}


def _vectorizer(config: AuditConfig):
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(ngram_range=(1, config.ngram_max), n_features=config.n_features,
                             token_pattern=TOKEN_PATTERN, alternate_sign=False, norm=None, dtype=_float32())


def _float32() -> Any:
    import numpy as np

    return np.float32


def _features(texts: list[str], config: AuditConfig) -> csr_matrix:
    """Hashed n-gram counts, sublinear tf (1 + log count), l2-normalised rows."""
    import numpy as np
    from sklearn.preprocessing import normalize

    matrix = _vectorizer(config).transform(texts).tocsr()
    np.log(matrix.data, out=matrix.data)
    matrix.data += 1.0
    return normalize(matrix, copy=False)


def _hash_index(ngram: str, n_features: int) -> int:
    """The column HashingVectorizer gives ``ngram`` (sklearn's FeatureHasher: murmurhash3, seed 0)."""
    from sklearn.utils import murmurhash3_32

    h = murmurhash3_32(ngram, seed=0)
    if h == -2147483648:
        return (2147483647 - (n_features - 1)) % n_features
    return abs(h) % n_features


def _ngram_names(texts: Iterable[str], config: AuditConfig) -> dict[int, str]:
    """Column -> the most frequent n-gram of ``texts`` hashed to it (to name the top features)."""
    analyze = _vectorizer(config).build_analyzer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(analyze(text))
    names: dict[int, str] = {}
    for ngram, _ in counts.most_common():  # most frequent first: a collision keeps the commonest
        names.setdefault(_hash_index(ngram, config.n_features), ngram)
    return names


def _bootstrap(sums: np.ndarray, counts: np.ndarray, config: AuditConfig, rng: np.random.Generator) -> list[float]:
    import numpy as np

    records = len(sums)
    estimates = []
    for start in range(0, config.bootstrap, 100):  # chunks bound the index matrix's memory
        draws = rng.integers(0, records, size=(min(100, config.bootstrap - start), records))
        estimates.append(sums[draws].sum(axis=1) / counts[draws].sum(axis=1))
    low, high = np.percentile(np.concatenate(estimates), [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def _top(coef: np.ndarray, names: dict[int, str], k: int) -> dict[str, list[dict[str, Any]]]:
    import numpy as np

    out: dict[str, list[dict[str, Any]]] = {"negative": [], "positive": []}
    reach = min(len(coef) - 1, 20 * k + 20)  # candidates: some columns have no name in the sample
    highest = np.argpartition(-coef, reach)[:reach]
    lowest = np.argpartition(coef, reach)[:reach]
    for direction, indices in (("negative", highest[np.argsort(-coef[highest])]),
                               ("positive", lowest[np.argsort(coef[lowest])])):
        for index in indices:
            if len(out[direction]) >= k or (coef[index] <= 0 if direction == "negative" else coef[index] >= 0):
                break
            if int(index) in names:
                out[direction].append({"ngram": names[int(index)], "weight": round(float(coef[index]), 3)})
    return out


def _fit(matrix: csr_matrix, pos_rows: np.ndarray, neg_rows: np.ndarray, config: AuditConfig):
    """The negative (1) vs positive (0) classifier on these rows of ``matrix``."""
    import numpy as np
    from scipy.sparse import vstack
    from sklearn.linear_model import SGDClassifier

    features = vstack([matrix[pos_rows], matrix[neg_rows]]).tocsr()
    labels = np.concatenate([np.zeros(len(pos_rows)), np.ones(len(neg_rows))])
    # logistic loss by SGD: as accurate as liblinear here and ~6x faster on a million hashed columns
    return SGDClassifier(loss="log_loss", alpha=config.sgd_alpha, max_iter=config.sgd_epochs, tol=None,
                         random_state=config.seed).fit(features, labels)


def _pairwise(model, matrix: csr_matrix, pos_rows: np.ndarray, neg_rows: np.ndarray, groups: Sequence[str],
              config: AuditConfig, stream: int) -> tuple[float, list[float] | None]:
    """(pairwise accuracy, bootstrap interval over ``groups``) of ``model`` on these pairs."""
    import numpy as np

    pos_score = model.decision_function(matrix[pos_rows])
    neg_score = model.decision_function(matrix[neg_rows])
    wins = (neg_score > pos_score).astype(np.float64) + 0.5 * (neg_score == pos_score)
    interval = None
    if config.bootstrap:
        keys = {g: k for k, g in enumerate(dict.fromkeys(groups))}
        column = np.fromiter((keys[g] for g in groups), dtype=np.int64, count=len(groups))
        sums = np.bincount(column, weights=wins, minlength=len(keys))
        counts = np.bincount(column, minlength=len(keys)).astype(np.float64)
        interval = _bootstrap(sums, counts, config, np.random.default_rng([config.seed, stream]))
    return round(float(wins.mean()), 4), interval


def audit_transfer(train: Iterable[AuditPair], test: Iterable[AuditPair],
                   config: AuditConfig | None = None) -> dict[str, dict[str, Any]]:
    """Do cues learned on one set of pairs find the negatives of another? Per error type present in both
    (and ``overall``): a classifier trained on every pair of ``train``, its pairwise accuracy on every
    pair of ``test`` with the bootstrap interval over ``test``'s records. The two sets must not share
    records (e.g. two data sets): nothing is held out. A scope with fewer than ``min_test_records``
    test records, or no training pair, is :data:`NOT_ENOUGH`."""
    import numpy as np

    config = config or AuditConfig()
    train, test = list(train), list(test)
    text_index: dict[str, int] = {}
    for p in (*train, *test):
        text_index.setdefault(p.positive, len(text_index))
        text_index.setdefault(p.negative, len(text_index))
    types = [t for t in TYPE_ORDER if any(p.error_type == t for p in train) and any(p.error_type == t for p in test)]
    out: dict[str, dict[str, Any]] = {}
    matrix = None
    for stream, name in enumerate([*types, OVERALL]):
        mine_train = [p for p in train if name in (OVERALL, p.error_type)]
        mine_test = [p for p in test if name in (OVERALL, p.error_type)]
        records = len({p.group for p in mine_test})
        if records < config.min_test_records or not mine_train:
            out[name] = {"status": NOT_ENOUGH, "accuracy": None, "interval": None, "train_pairs": len(mine_train),
                         "test_pairs": len(mine_test), "test_records": records}
            continue
        if matrix is None:
            matrix = _features(list(text_index), config)

        def rows(pairs: list[AuditPair], side: str) -> np.ndarray:
            return np.fromiter((text_index[getattr(p, side)] for p in pairs), dtype=np.int64, count=len(pairs))

        model = _fit(matrix, rows(mine_train, "positive"), rows(mine_train, "negative"), config)
        accuracy, interval = _pairwise(model, matrix, rows(mine_test, "positive"), rows(mine_test, "negative"),
                                       [p.group for p in mine_test], config, stream)
        out[name] = {"status": "ok", "accuracy": accuracy, "interval": interval, "train_pairs": len(mine_train),
                     "test_pairs": len(mine_test), "test_records": records,
                     "warning": None if accuracy <= config.warn_above else
                     f"{name}: cues learned on the training pairs find {accuracy:.2f} of the test pairs' negatives"}
    return out


def audit_pairs(pairs: Iterable[AuditPair | tuple[str, str, str] | tuple[str, str, str, str | None]],
                config: AuditConfig | None = None) -> AuditReport:
    """The shortcut audit of ``pairs`` (:class:`AuditPair` or ``(group, positive, negative[, type])``):
    per error type and overall, see the module docstring. Deterministic for a given ``config.seed``.

    A scope with fewer than ``config.min_test_records`` test records gets status :data:`NOT_ENOUGH`
    and no accuracy; when no scope has enough, nothing is vectorised or trained (cheap for tiny runs).
    """
    import numpy as np

    config = config or AuditConfig()
    started = time.perf_counter()
    items = [p if isinstance(p, AuditPair) else AuditPair(*p) for p in pairs]
    groups = sorted({p.group for p in items})
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(groups))
    n_test = int(round(config.test_fraction * len(groups)))
    test_groups = {groups[i] for i in order[:n_test]}
    seen = dict.fromkeys(p.error_type for p in items if p.error_type is not None)
    types = [t for t in TYPE_ORDER if t in seen] + [t for t in seen if t not in TYPE_ORDER]
    scopes: dict[str, list[int]] = {OVERALL: list(range(len(items)))}
    for et in types:
        scopes[et] = [i for i, p in enumerate(items) if p.error_type == et]

    def test_records(indices: list[int]) -> int:
        return len({items[i].group for i in indices if items[i].group in test_groups})

    runnable = {name for name, indices in scopes.items() if test_records(indices) >= config.min_test_records}
    matrix = None
    names: dict[int, str] = {}
    if runnable:
        text_index: dict[str, int] = {}
        for p in items:
            text_index.setdefault(p.positive, len(text_index))
            text_index.setdefault(p.negative, len(text_index))
        matrix = _features(list(text_index), config)
        pos_row = np.fromiter((text_index[p.positive] for p in items), dtype=np.int64, count=len(items))
        neg_row = np.fromiter((text_index[p.negative] for p in items), dtype=np.int64, count=len(items))
        if config.top_ngrams:
            train_groups = [g for g in (groups[i] for i in order[n_test:])][:config.ngram_sample_records]
            sample = set(train_groups)
            names = _ngram_names(dict.fromkeys(t for p in items if p.group in sample
                                               for t in (p.positive, p.negative)), config)

    results: dict[str, TypeAudit] = {}
    warnings: list[str] = []
    for name, indices in scopes.items():
        scope = [items[i] for i in indices]
        records = len({p.group for p in scope})
        n_test_records = test_records(indices)
        test = [i for i in indices if items[i].group in test_groups]
        audit = TypeAudit(pairs=len(scope), records=records, train_records=records - n_test_records,
                          test_records=n_test_records, test_pairs=len(test), status=NOT_ENOUGH, accuracy=None,
                          interval=None, length=_length_stats(scope), top_ngrams={"negative": [], "positive": []},
                          warning=None)
        results[name] = audit
        if name not in runnable or matrix is None:
            continue
        train = np.array([i for i in indices if items[i].group not in test_groups], dtype=np.int64)
        model = _fit(matrix, pos_row[train], neg_row[train], config)
        test_idx = np.array(test, dtype=np.int64)
        audit.status = "ok"
        audit.accuracy, audit.interval = _pairwise(model, matrix, pos_row[test_idx], neg_row[test_idx],
                                                   [items[i].group for i in test], config, len(results))
        audit.top_ngrams = _top(model.coef_[0], names, config.top_ngrams)
        if audit.accuracy > config.warn_above:
            audit.warning = (f"{name}: a word n-gram classifier scores the negative above its positive in "
                             f"{audit.accuracy:.2f} of test pairs (above {config.warn_above:.2f}): the negatives "
                             f"carry a surface shortcut")
            warnings.append(audit.warning)
    overall = results.pop(OVERALL)
    if overall.warning:  # listed like the tables: the types first, overall last
        warnings.append(warnings.pop(0))
    settings = config.model_dump(exclude={"shortcut_audit"})
    report = AuditReport(pairs=len(items), records=len(groups), per_type=results, overall=overall,
                         settings=settings, wall_time_s=round(time.perf_counter() - started, 3), warnings=warnings)
    report.method = report.method.format(n=config.ngram_max, test=config.test_fraction)
    return report
