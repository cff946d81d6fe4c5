"""Strategies: which error type(s) each record's negative gets, planned before anything is generated.

A strategy turns the records and the configured error types into a plan,
``{record_id: [error types]}``; injection generates exactly the planned negatives (a fallback
stays within the planned type), the outputs pair exactly those, and training uses them. The
built-ins:

* ``single`` -- the one configured type for every record;
* ``all`` -- every configured type for every record (a pair per type);
* ``mixed`` -- one type per record, drawn with a per-record seed (the paper's main strategy):
  the draw does not depend on the order or the subset of records, so a resumed run draws the
  same types.

Adding one (registered by name, nothing else to edit)::

    from seapo.inject.strategies import STRATEGIES, Strategy

    @STRATEGIES.register("logic-first")
    class LogicFirst(Strategy):
        def plan(self, records, error_types, seed):
            return {r.id: [ErrorType.LOGIC] for r in records}

then ``seapo inject ... --strategy logic-first``. Options of a strategy come from
``InjectConfig.strategy_options`` as keyword arguments of its constructor.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any, ClassVar

from seapo.data.schema import Record
from seapo.inject.error_types import ErrorType
from seapo.registry import Registry

Plan = dict[str, list[ErrorType]]


class Strategy:
    """Plans the error types of every record; subclasses implement :meth:`plan`."""

    name: ClassVar[str] = "base"

    def __init__(self, **options: Any) -> None:
        if options:
            raise ValueError(f"strategy '{self.name}' takes no options, got {sorted(options)}")

    def check(self, error_types: Sequence[ErrorType]) -> None:
        """Raise ``ValueError`` when the strategy cannot work with these error types."""
        if not error_types:
            raise ValueError("no error types to inject")

    def plan(self, records: Sequence[Record], error_types: Sequence[ErrorType], seed: int) -> Plan:
        """``{record_id: [types]}`` for every record (seeded; the same inputs give the same plan)."""
        raise NotImplementedError


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "seapo.strategies")
"""Every strategy by name."""


def make_strategy(name: str, options: dict[str, Any] | None = None) -> Strategy:
    return STRATEGIES.get(name)(**(options or {}))


@STRATEGIES.register("single")
class SingleStrategy(Strategy):
    """One named error type for every record."""

    def check(self, error_types: Sequence[ErrorType]) -> None:
        if len(error_types) != 1:
            raise ValueError(f"strategy 'single' needs exactly one error type, got {[t.value for t in error_types]}"
                             " (e.g. --error-types logic)")

    def plan(self, records: Sequence[Record], error_types: Sequence[ErrorType], seed: int) -> Plan:
        self.check(error_types)
        return {r.id: [error_types[0]] for r in records}


@STRATEGIES.register("all")
class AllStrategy(Strategy):
    """Every configured type for every record: one pair per type."""

    def plan(self, records: Sequence[Record], error_types: Sequence[ErrorType], seed: int) -> Plan:
        self.check(error_types)
        return {r.id: list(error_types) for r in records}


def draw_mixed(record_id: str, available: Sequence[str], seed: int) -> str | None:
    """Pick one of ``available`` error types for a record, reproducibly for (seed, record)."""
    if not available:
        return None
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    return random.Random(digest).choice(sorted(available))


@STRATEGIES.register("mixed")
class MixedStrategy(Strategy):
    """One type per record, drawn uniformly with a per-record seed (:func:`draw_mixed`)."""

    def plan(self, records: Sequence[Record], error_types: Sequence[ErrorType], seed: int) -> Plan:
        self.check(error_types)
        values = [t.value for t in error_types]
        return {r.id: [ErrorType(draw_mixed(r.id, values, seed))] for r in records}
