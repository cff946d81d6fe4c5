"""The profile's figures: counts per error type, the distribution over the three types and its 95%
confidence intervals.

Two quantities, each with its own interval:

* ``distribution`` -- the share of each type among the error-type findings of the erroneous answers
  (an answer with two types counts once for each), summing to 1: what the ``profile`` strategy
  follows. Its interval is a **percentile bootstrap**: the erroneous answers are resampled with
  replacement (``BOOTSTRAP_RESAMPLES`` times, seeded) and the shares recomputed, so the
  dependence between the types of one answer is kept (a per-type Wilson interval on mentions would
  treat them as independent).
* ``rate`` -- the share of decided answers (judged correct or erroneous, not unknown) that hold the
  type, with a **Wilson score interval** (binomial, one per type).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from seapo.inject.error_types import ALL_ERROR_TYPES, ErrorType

BOOTSTRAP_RESAMPLES = 2000
Z95 = 1.959963984540054


def format_interval(value: float | None, low: float | None, high: float | None) -> str:
    """``0.625 [0.410, 0.830]``: a share or rate with its interval, as ``report.md`` and the inspector
    show them; ``–`` for no value (and for a missing bound)."""
    if value is None:
        return "–"
    bound = "–" if low is None else f"{low:.3f}", "–" if high is None else f"{high:.3f}"
    return f"{value:.3f} [{bound[0]}, {bound[1]}]"


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a binomial proportion k/n (None for n = 0)."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_shares(answers: Sequence[frozenset[ErrorType]], seed: int,
                     resamples: int = BOOTSTRAP_RESAMPLES) -> dict[ErrorType, tuple[float, float]] | None:
    """95% percentile-bootstrap intervals of each type's share of findings over erroneous answers."""
    import numpy as np

    answers = [a for a in answers if a]
    if not answers:
        return None
    matrix = np.array([[t in a for t in ALL_ERROR_TYPES] for a in answers], dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(answers), size=(resamples, len(answers)))
    totals = matrix[picks].sum(axis=1)  # resamples x types
    shares = totals / totals.sum(axis=1, keepdims=True)
    low, high = np.percentile(shares, [2.5, 97.5], axis=0)
    return {t: (float(low[i]), float(high[i])) for i, t in enumerate(ALL_ERROR_TYPES)}


def summarize(outcomes: Sequence[tuple[frozenset[ErrorType], bool]], seed: int) -> dict[str, Any]:
    """Figures of a set of judged answers; ``outcomes``: (types present, whether some type was unknown)."""
    erroneous = [types for types, _ in outcomes if types]
    correct = sum(1 for types, unknown in outcomes if not types and not unknown)
    unknown = sum(1 for types, unknown in outcomes if not types and unknown)
    decided = correct + len(erroneous)
    counts = {t: sum(1 for types in erroneous if t in types) for t in ALL_ERROR_TYPES}
    mentions = sum(counts.values())
    intervals = bootstrap_shares(erroneous, seed)
    distribution: dict[str, Any] = {}
    rates: dict[str, Any] = {}
    for t in ALL_ERROR_TYPES:
        low_high = intervals[t] if intervals else None
        distribution[t.value] = {"share": round(counts[t] / mentions, 4) if mentions else None,
                                 "low": round(low_high[0], 4) if low_high else None,
                                 "high": round(low_high[1], 4) if low_high else None}
        w = wilson(counts[t], decided)
        rates[t.value] = {"rate": round(counts[t] / decided, 4) if decided else None,
                          "low": round(w[0], 4) if w else None, "high": round(w[1], 4) if w else None}
    return {"answers": len(outcomes), "judged_correct": correct, "unknown": unknown, "erroneous": len(erroneous),
            "counts": {t.value: c for t, c in counts.items()}, "distribution": distribution, "rates": rates}


INTERVALS = {
    "confidence": 0.95,
    "distribution": f"percentile bootstrap over the erroneous answers ({BOOTSTRAP_RESAMPLES} resamples, seeded)",
    "rates": "Wilson score interval per type over the decided answers (judged correct or erroneous)",
}
