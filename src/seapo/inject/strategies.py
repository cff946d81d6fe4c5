"""How negatives become pairs: ``single`` (one type), ``all`` (every type), ``mixed`` (one drawn).

The ``mixed`` draw is seeded per record (not per position), so it does not depend on the
order or the subset of records, and resuming a run draws the same types.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from enum import Enum

from seapo.inject.error_types import ALL_ERROR_TYPES, ErrorType


class Strategy(str, Enum):
    SINGLE = "single"
    ALL = "all"
    MIXED = "mixed"


def types_to_inject(strategy: Strategy | str, error_types: Sequence[ErrorType] | None) -> tuple[ErrorType, ...]:
    """Which types to generate for a strategy; ``single`` needs exactly one."""
    strategy = Strategy(strategy)
    chosen = tuple(error_types) if error_types else ALL_ERROR_TYPES
    if strategy is Strategy.SINGLE and len(chosen) != 1:
        raise ValueError(f"strategy 'single' needs exactly one error type, got {[t.value for t in chosen]}"
                         " (pass e.g. --error-types logic)")
    return chosen


def draw_mixed(record_id: str, available: Sequence[str], seed: int) -> str | None:
    """Pick one of ``available`` error types for a record, reproducibly for (seed, record)."""
    if not available:
        return None
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    return random.Random(digest).choice(sorted(available))


def select_types(strategy: Strategy | str, record_id: str, accepted: Sequence[str], seed: int) -> list[str]:
    """The error types whose negatives become pairs for one record."""
    if Strategy(strategy) is Strategy.MIXED:
        drawn = draw_mixed(record_id, accepted, seed)
        return [drawn] if drawn else []
    return [t.value for t in ALL_ERROR_TYPES if t.value in accepted]
