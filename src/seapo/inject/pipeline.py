"""``seapo inject``: records -> verified negatives -> pairs, KTO rows and a summary.

For each error type, records are processed in chunks (one generation batch). Each chunk runs
the primary injector up to ``max_attempts`` times on the items that have not yet passed
verification, then the rules fallback on what is left, and is committed to the SQLite store
in one transaction. A re-run with the same settings skips what the store already holds.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from seapo.data.schema import Record, read_records
from seapo.inject.base import Injection, Injector
from seapo.inject.error_types import ErrorType, parse_error_types
from seapo.inject.llm import LLMInjector, LLMInjectorConfig
from seapo.inject.outputs import OUTPUT_FILES, write_outputs
from seapo.inject.store import Attempt, InjectionStore, ItemResult
from seapo.inject.strategies import Strategy, types_to_inject
from seapo.inject.verify import Verifier, VerifierConfig
from seapo.progress import make_progress

STORE_FILE = "injections.sqlite"


@dataclass
class InjectConfig:
    """Settings of an injection run."""

    strategy: Literal["single", "all", "mixed"] = "mixed"
    """``single``: one named type; ``all``: a pair per type; ``mixed``: one type drawn per record."""
    error_types: list[str] = field(default_factory=lambda: [t.value for t in ErrorType])
    """Types to inject (``single`` needs exactly one)."""
    injector: Literal["llm", "rules"] = "llm"
    """Primary injector: an LLM (the paper's method) or the model-free rules injector."""
    llm: LLMInjectorConfig = field(default_factory=LLMInjectorConfig)
    """LLM injector settings (used when ``injector`` is ``llm``)."""
    rules_seed: int = 0
    """Seed of the rules injector (primary or fallback)."""
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    """What counts as a usable negative."""
    max_attempts: int = 2
    """Tries with the primary injector per item; retries sample (greedy would repeat itself)."""
    fallback: Literal["rules", "none"] = "rules"
    """What to do with items the primary injector failed: the rules injector, or reject them."""
    fallback_attempts: int = 3
    """Tries with the rules fallback."""
    seed: int = 0
    """Seed of the ``mixed`` draw."""
    limit: int | None = None
    """Use only the first N records."""
    chunk_size: int | None = None
    """Items per committed chunk; default: the LLM batch size, or 512 for rules."""
    show_progress: bool | None = None
    """Progress bars (default: when stderr is a terminal)."""

    def settings_key(self, injector: Injector) -> str:
        """Hash of everything that changes an item's outcome: the resume key."""
        parts = {"injector": injector.fingerprint(), "verifier": asdict(self.verifier),
                 "max_attempts": self.max_attempts, "fallback": self.fallback,
                 "fallback_attempts": self.fallback_attempts, "rules_seed": self.rules_seed}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class InjectResult:
    out_dir: Path
    summary: dict[str, Any]

    @property
    def pairs_path(self) -> Path:
        return self.out_dir / OUTPUT_FILES["pairs"]

    @property
    def kto_path(self) -> Path:
        return self.out_dir / OUTPUT_FILES["kto"]

    @property
    def negatives_path(self) -> Path:
        return self.out_dir / OUTPUT_FILES["negatives"]


def _rules_injector(seed: int) -> Injector:
    from seapo.inject.rules import RulesInjector, RulesInjectorConfig

    return RulesInjector(RulesInjectorConfig(seed=seed))


def _attempt(injection: Injection, verdict) -> Attempt:  # noqa: ANN001
    return Attempt(injection.injector, verdict.passed, verdict.reason, verdict.difference,
                   verdict.changed_tokens, injection.text)


def run_chunk(chunk: Sequence[Record], error_type: ErrorType, primary: Injector, fallback: Injector | None,
              verifier: Verifier, config: InjectConfig, session: str) -> list[ItemResult]:
    """Inject, verify, retry and fall back for one chunk of records; returns one result each."""
    attempts: dict[str, list[Attempt]] = {r.id: [] for r in chunk}
    winners: dict[str, tuple[Injection, Any, bool]] = {}
    plans = [(primary, config.max_attempts, False)]
    if fallback is not None and fallback is not primary:
        plans.append((fallback, config.fallback_attempts, True))
    for injector, tries, is_fallback in plans:
        for attempt in range(tries):
            pending = [r for r in chunk if r.id not in winners]
            if not pending:
                break
            for record, injection in zip(pending, injector.inject(pending, error_type, attempt=attempt),
                                         strict=True):
                verdict = verifier.check(record.response, injection.text, truncated=injection.truncated)
                attempts[record.id].append(_attempt(injection, verdict))
                if verdict.passed:
                    winners[record.id] = (injection, verdict, is_fallback)
    results = []
    for record in chunk:
        tried = attempts[record.id]
        if record.id in winners:
            injection, verdict, is_fallback = winners[record.id]
            results.append(ItemResult(record.id, error_type.value, True, injection.text, injection.injector,
                                      is_fallback, verdict.difference, verdict.changed_tokens, None, tried,
                                      injection.details, session))
        else:
            last = tried[-1]
            results.append(ItemResult(record.id, error_type.value, False, None, None, False, last.difference,
                                      last.changed_tokens, last.reason, tried, {}, session))
    return results


def inject(records: str | Path | Sequence[Record], out_dir: str | Path, config: InjectConfig | None = None,
           *, injector: Injector | None = None) -> InjectResult:
    """Make verified negatives for every record and write the run directory.

    ``records``: a ``seapo prepare`` JSONL file or a list of :class:`Record`. ``injector``
    overrides the one the config would build (useful to share a loaded model). Resumable:
    running again with the same settings continues where the last run stopped.
    """
    config = config or InjectConfig()
    started = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not isinstance(records, (list, tuple)):
        records = read_records(records)
    records = list(records)[: config.limit] if config.limit else list(records)
    error_types = types_to_inject(Strategy(config.strategy), parse_error_types(config.error_types))
    verifier = Verifier(config.verifier)

    rules = _rules_injector(config.rules_seed) if (config.injector == "rules" or config.fallback == "rules") \
        else None
    primary = injector or (rules if config.injector == "rules" else LLMInjector(config.llm))
    fallback = rules if config.fallback == "rules" else None
    chunk_size = config.chunk_size or (config.llm.batch_size if config.injector == "llm" else 512)

    fingerprint = primary.fingerprint()
    store = InjectionStore(out_dir / STORE_FILE, config.settings_key(primary))
    session = uuid.uuid4().hex[:8]
    done = store.done_keys()
    unique = list({r.id: r for r in records}.values())  # the same record twice is injected once
    try:
        with make_progress(disable=None if config.show_progress is None else not config.show_progress) as bar:
            for et in error_types:
                todo = [r for r in unique if (r.id, et.value) not in done]
                task = bar.add_task(f"{et.value:>13}", total=len(unique), completed=len(unique) - len(todo))
                for start in range(0, len(todo), chunk_size):
                    chunk = todo[start:start + chunk_size]
                    store.put_many(run_chunk(chunk, et, primary, fallback, verifier, config, session))
                    bar.advance(task, len(chunk))
        items = store.get_all()
    finally:
        store.close()
        if injector is None:
            primary.close()
    summary = write_outputs(out_dir, records, items, error_types, config.strategy, config.seed, {
        "injector": config.injector,
        "injector_fingerprint": fingerprint,
        "fallback": config.fallback,
        "settings_key": store.settings,
        "wall_time_s": round(time.time() - started, 2),
        "resumed_items": sum(1 for r in unique for et in error_types if (r.id, et.value) in done),
    })
    return InjectResult(out_dir, summary)
