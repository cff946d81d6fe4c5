"""Strategies: which error type(s) each record's negative gets, planned before anything is generated.

A strategy turns the records and the configured error types into a plan,
``{record_id: [error types]}``; injection generates exactly the planned negatives (a fallback
stays within the planned type), the outputs pair exactly those, and training uses them. The
built-ins:

* ``single`` -- the one configured type for every record;
* ``all`` -- every configured type for every record (a pair per type);
* ``mixed`` -- one type per record, drawn with a per-record seed (the paper's main strategy):
  the draw does not depend on the order or the subset of records, so a resumed run draws the
  same types;
* ``profile`` -- one type per record, drawn in proportion to the policy's own measured error
  distribution (``seapo profile``'s ``profile.json``, option ``profile``), with a ``floor`` so no
  type vanishes; per-record draws like ``mixed``;
* ``top`` -- the profile's most common error type for every record.

:meth:`Strategy.describe` says what a plan holds (its realised distribution, and the target
distribution of the profile strategies): ``summary.json``'s ``plan``.

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
import json
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from seapo.data.schema import Record
from seapo.errors import InputError
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

    def describe(self, plan: Plan) -> dict[str, Any]:
        """What the plan holds, for ``summary.json``: planned negatives per type and their shares."""
        counts = Counter(t.value for types in plan.values() for t in types)
        total = sum(counts.values())
        return {"planned": dict(sorted(counts.items())),
                "realised": {t: round(c / total, 4) for t, c in sorted(counts.items())} if total else {}}


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


def _uniform(record_id: str, seed: int) -> float:
    """A number in [0, 1) fixed by (seed, record): the per-record draw of the profile strategy."""
    digest = hashlib.sha256(f"profile:{seed}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def read_profile_distribution(path: str | Path) -> dict[ErrorType, float]:
    """The error-type distribution of a ``seapo profile`` output (``profile.json``): share per type.

    A missing, unreadable or malformed file, or a profile without any erroneous answer (nothing to
    be proportional to), is an :class:`InputError` naming the file and the field.
    """
    path = Path(path)
    fix = "make one with `seapo profile --model M --data D --out DIR` (DIR/profile.json)"
    if not path.is_file():
        raise InputError(f"no profile file here; {fix}", path=str(path), field="strategy_options.profile")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a readable JSON profile ({exc}); {fix}", path=str(path)) from None
    dist = data.get("distribution") if isinstance(data, dict) else None
    if not isinstance(dist, dict):
        raise InputError(f"no 'distribution' mapping: not a seapo profile.json; {fix}", path=str(path),
                         field="distribution")
    shares: dict[ErrorType, float] = {}
    for et in ErrorType:
        entry = dist.get(et.value)
        share = entry.get("share") if isinstance(entry, dict) else None
        if share is None and not data.get("erroneous"):
            raise InputError("the profile holds no erroneous answer (every answer judged correct or unknown), so "
                             "there is no distribution to follow; use --strategy mixed", path=str(path),
                             field="distribution")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise InputError(f"share must be a number in [0, 1], got {share!r}", path=str(path),
                             field=f"distribution.{et.value}.share")
        shares[et] = float(share)
    if sum(shares.values()) <= 0:
        raise InputError("every share is 0: nothing to follow", path=str(path), field="distribution")
    return shares


def target_distribution(shares: dict[ErrorType, float], error_types: Sequence[ErrorType],
                        floor: float) -> dict[ErrorType, float]:
    """The planned share of each configured type: ``floor + (1 - k * floor) * share``, with the
    measured shares renormalised over the ``k`` configured types -- every type gets at least
    ``floor`` and the rest is split in proportion to the profile."""
    k = len(error_types)
    if k * floor > 1:
        raise ValueError(f"floor {floor} x {k} error types exceeds 1")
    mass = sum(shares.get(t, 0.0) for t in error_types)
    measured = {t: shares.get(t, 0.0) / mass if mass > 0 else 1 / k for t in error_types}
    return {t: floor + (1 - k * floor) * measured[t] for t in error_types}


def draw_weighted(record_id: str, target: dict[ErrorType, float], seed: int) -> ErrorType:
    """One type for a record, with probability ``target[type]``, reproducibly for (seed, record)."""
    u = _uniform(record_id, seed)
    cumulative = 0.0
    ordered = sorted(target, key=lambda t: t.value)
    for et in ordered:
        cumulative += target[et]
        if u < cumulative:
            return et
    return ordered[-1]  # rounding: u just below 1


class _ProfileBased(Strategy):
    """A strategy that reads ``seapo profile``'s ``profile.json`` when it plans (not when it is
    configured: in ``seapo run`` the profile is made by an earlier stage)."""

    def __init__(self, profile: str | Path | None = None, floor: float = 0.05, **options: Any) -> None:
        super().__init__(**options)
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor < 1:
            raise ValueError(f"option 'floor' must be a number in [0, 1), got {floor!r}")
        # The path may come later than the strategy's name (``--profile``, or seapo run's own profile stage):
        # its absence is an error when planning, still before anything is generated.
        self.profile = Path(profile) if profile is not None and str(profile).strip() else None
        self.floor = float(floor)
        self.target: dict[ErrorType, float] = {}

    def shares(self) -> dict[ErrorType, float]:
        if self.profile is None:
            raise InputError(f"strategy '{self.name}' needs a profile: seapo inject --strategy {self.name} --profile "
                             "DIR/profile.json (made by `seapo profile`)", field="strategy_options.profile")
        return read_profile_distribution(self.profile)

    def check(self, error_types: Sequence[ErrorType]) -> None:
        super().check(error_types)
        if len(error_types) * self.floor > 1:
            raise ValueError(f"floor {self.floor} x {len(error_types)} error types exceeds 1")

    def describe(self, plan: Plan) -> dict[str, Any]:
        return {**super().describe(plan), "profile": str(self.profile) if self.profile else None, "floor": self.floor,
                "target": {t.value: round(s, 4) for t, s in sorted(self.target.items(), key=lambda x: x[0].value)}}


@STRATEGIES.register("profile")
class ProfileStrategy(_ProfileBased):
    """One type per record, drawn in proportion to the profile's distribution with a floor
    (:func:`target_distribution`), with a per-record seed (:func:`draw_weighted`)."""

    def plan(self, records: Sequence[Record], error_types: Sequence[ErrorType], seed: int) -> Plan:
        self.check(error_types)
        self.target = target_distribution(self.shares(), error_types, self.floor)
        return {r.id: [draw_weighted(r.id, self.target, seed)] for r in records}


@STRATEGIES.register("top")
class TopStrategy(_ProfileBased):
    """The profile's most common configured error type for every record (ties: alphabetical)."""

    def plan(self, records: Sequence[Record], error_types: Sequence[ErrorType], seed: int) -> Plan:
        self.check(error_types)
        shares = self.shares()
        top = max(sorted(error_types, key=lambda t: t.value), key=lambda t: shares.get(t, 0.0))
        self.target = {t: 1.0 if t is top else 0.0 for t in error_types}
        return {r.id: [top] for r in records}
