"""``seapo inject``: records -> a plan -> verified negatives -> pairs, KTO rows and a summary.

The strategy plans which error type(s) each record gets before anything is generated. Then,
for each error type, the planned records are processed in chunks: each chunk runs the primary
injector up to ``max_attempts`` times on the items that have not yet passed verification, then
the rules fallback (within the same type) on what is left, and is committed to the SQLite
store in one transaction. A re-run with the same settings skips what the store already holds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from seapo.audit.config import AuditConfig
from seapo.config import SeapoConfig
from seapo.data.schema import Record, read_records
from seapo.distributed import RayConfig
from seapo.errors import BudgetExceeded
from seapo.fingerprint import stable_hash
from seapo.inject.base import INJECTORS, Injection, Injector, make_injector
from seapo.inject.error_types import ALL_ERROR_TYPES, ErrorType, parse_error_types
from seapo.inject.fluency import FluencyConfig, FluencyGate
from seapo.inject.llm import LLMInjectorConfig
from seapo.inject.outputs import OUTPUT_FILES, write_outputs
from seapo.inject.rules import RulesInjectorConfig
from seapo.inject.store import Attempt, InjectionStore, ItemResult, item_row
from seapo.inject.strategies import STRATEGIES, Plan, make_strategy
from seapo.inject.verify import Verification, Verifier, VerifierConfig
from seapo.judge import Judge, JudgeItem, Verdict
from seapo.judge.config import JudgeConfig
from seapo.outputs import folder_lock, remove_legacy_temps
from seapo.progress import make_progress

STORE_FILE = "injections.sqlite"
DEFAULT_CHUNKS = {"rules": 512}
"""Items per committed chunk when ``chunk_size`` is not set (others: 128)."""


class InjectConfig(SeapoConfig):
    """Settings of an injection run (``seapo inject``; the ``inject`` section of ``seapo run``)."""

    strategy: str = Field("mixed", description="Which error types each record gets: single (one named type), "
                          "all (a pair per type) or mixed (one type drawn per record, seeded; the paper's main "
                          "strategy), profile (one type drawn per record in proportion to the policy's measured "
                          "error distribution: strategy_options.profile = a seapo profile.json, floor = least share), "
                          "top (the profile's most common type), or a registered third-party strategy.")
    strategy_options: dict[str, Any] = Field(default_factory=dict, description="Keyword options of the strategy "
                                             "(profile and top: 'profile', the path of a profile.json; profile "
                                             "also 'floor', the least share of a type, default 0.05).")
    error_types: list[ErrorType] = Field(default_factory=lambda: list(ALL_ERROR_TYPES),
                                         description="Types to inject: correctness, logic, hallucination, or all "
                                                     "('single' needs exactly one).")
    injector: str = Field("llm", description="Primary injector: llm (an injector model, the paper's method), rules "
                          "(model-free, deterministic, fast) or a registered third-party injector.")
    llm: LLMInjectorConfig = Field(default_factory=LLMInjectorConfig, description="LLM injector settings.")
    rules: RulesInjectorConfig = Field(default_factory=RulesInjectorConfig,
                                       description="Rules injector settings (primary or fallback).")
    injector_options: dict[str, Any] = Field(default_factory=dict, description="Settings of a third-party "
                                             "injector, validated by its own config class.")
    verifier: VerifierConfig = Field(default_factory=VerifierConfig,
                                     description="What counts as a usable negative.")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="Which judge must find the named error "
                               "in a negative that passed the verifier before it is accepted.")
    max_attempts: int = Field(2, ge=1, description="Tries with the primary injector per item before the fallback; "
                              "retries sample (greedy decoding would repeat itself).")
    fallback: Literal["rules", "none"] = Field("rules", description="Items the primary injector failed: rules (the "
                                               "rules injector makes a negative of the same type) or none "
                                               "(rejected, with every attempt recorded).")
    fallback_attempts: int = Field(3, ge=1, description="Tries with the rules fallback.")
    seed: int = Field(0, description="Seed of the strategy's plan (the mixed draw).")
    limit: int | None = Field(None, ge=1, description="Use only the first N records.")
    chunk_size: int | None = Field(None, ge=1, description="Items per committed chunk: at most this much work is "
                                   "lost to a crash. Independent of the backend's batch size (default: 512 for "
                                   "the rules injector, else 128).")
    show_progress: bool | None = Field(None, description="Progress bars (default: when stderr is a terminal).")
    fluency: FluencyConfig = Field(default_factory=FluencyConfig, description="The fluency gate: a negative "
                                   "whose edit leaves broken text (a scorer model finds its least likely new token "
                                   "far less likely than what it replaced) is a failed attempt, reason disfluent; "
                                   "off by default (docs/fluency.md); --fluency switches it on.")
    audit: AuditConfig = Field(default_factory=AuditConfig, description="The shortcut audit of the accepted pairs "
                               "in summary.json (shortcut_audit; docs/audit.md); --no-shortcut-audit switches it "
                               "off.")
    ray: RayConfig = Field(default_factory=RayConfig, description="Run the chunks on Ray Data (docs/ray.md): "
                           "--ray local, auto or a cluster address; each actor loads the injector, judge and "
                           "backend once, results stream back into this run's store. Same outputs as without "
                           "it (the rules injector: identical). In YAML `ray: auto` or a mapping of these "
                           "settings.")

    @field_validator("error_types", mode="before")
    @classmethod
    def _parse_types(cls, value: Any) -> Any:
        return list(parse_error_types(value))

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        return STRATEGIES.check(value)

    @field_validator("injector")
    @classmethod
    def _known_injector(cls, value: str) -> str:
        return INJECTORS.check(value)

    @model_validator(mode="after")
    def _strategy_fits(self) -> InjectConfig:
        make_strategy(self.strategy, self.strategy_options).check(self.error_types)
        return self


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


def _attempt(injection: Injection, verdict: Verification, judged: Verdict | None, drop: float | None) -> Attempt:
    return Attempt(injection.injector, verdict.passed, verdict.reason, verdict.difference,
                   verdict.changed_tokens, injection.text, injection.error,
                   judged.to_dict() if judged is not None else None, drop)


def _check(verifier: Verifier, record: Record, injection: Injection) -> Verification:
    if injection.error is not None:  # the backend failed on this item: a failed attempt, retried
        return Verification(False, "backend_error", 0.0, 0)
    return verifier.check(record.response, injection.text, truncated=injection.truncated)


JUDGE_REJECTIONS = {"absent": "judge_no_error", "unknown": "judge_unknown"}
"""Attempt reasons of a negative the judge did not find its named error in."""


def judge_attempts(judge: Judge | None, records: Sequence[Record], injections: Sequence[Injection],
                   verdicts: list[Verification], error_type: ErrorType,
                   config: JudgeConfig) -> list[Verdict | None]:
    """Judge, in one batch, the negatives the verifier passed; one that does not hold its named error
    (absent, or unknown unless ``accept_unknown``) becomes a failed attempt (``verdicts`` is updated).
    The positive is the reference, and it is also the record the rules evidence is checked against."""
    judged: list[Verdict | None] = [None] * len(records)
    if judge is None:
        return judged
    todo = [i for i, v in enumerate(verdicts) if v.passed]
    items = [JudgeItem(question=records[i].question, response=injections[i].text or "",
                       reference=records[i].response, claimed=error_type, evidence=injections[i].details or None)
             for i in todo]
    for i, found in zip(todo, judge.judge(items) if items else [], strict=True):
        judged[i] = found
        finding = found.finding(error_type)
        if finding == "present" or (finding == "unknown" and config.accept_unknown):
            continue
        v = verdicts[i]
        verdicts[i] = Verification(False, JUDGE_REJECTIONS[finding], v.difference, v.changed_tokens)
    return judged


def fluency_attempts(gate: FluencyGate | None, records: Sequence[Record], injections: Sequence[Injection],
                     verdicts: list[Verification]) -> list[float | None]:
    """Score, in one batch, the negatives still passing (verifier and judge); one whose edit is broken
    text (drop above ``max_drop``) becomes a failed attempt, reason ``disfluent``. Runs last: it
    loads a model, and the judge has already turned away most of what it would reject."""
    drops: list[float | None] = [None] * len(records)
    todo = [i for i, v in enumerate(verdicts) if v.passed] if gate is not None else []
    if not todo:
        return drops
    scored = gate.drops([(records[i].response, injections[i].text or "") for i in todo])
    for i, drop in zip(todo, scored, strict=True):
        drops[i] = drop
        if drop is not None and drop > gate.config.max_drop:
            v = verdicts[i]
            verdicts[i] = Verification(False, "disfluent", v.difference, v.changed_tokens)
    return drops


def run_chunk(chunk: Sequence[Record], error_type: ErrorType, primary: Injector, fallback: Injector | None,
              verifier: Verifier, config: InjectConfig, session: str, judge: Judge | None = None,
              gate: FluencyGate | None = None) -> list[ItemResult]:
    """Inject, verify, judge, check fluency, retry and fall back for one chunk of records; returns one
    result each."""
    attempts: dict[str, list[Attempt]] = {r.id: [] for r in chunk}
    winners: dict[str, tuple[Injection, Verification, bool]] = {}
    tries = [(primary, config.max_attempts, False)]
    if fallback is not None and fallback is not primary:
        tries.append((fallback, config.fallback_attempts, True))
    for injector, count, is_fallback in tries:
        for attempt in range(count):
            pending = [r for r in chunk if r.id not in winners]
            if not pending:
                break
            injections = injector.inject(pending, error_type, attempt=attempt)
            if len(injections) != len(pending):
                raise RuntimeError(f"injector '{injector.name}' returned {len(injections)} injections for "
                                   f"{len(pending)} records")
            checks = [_check(verifier, r, i) for r, i in zip(pending, injections, strict=True)]
            judged = judge_attempts(judge, pending, injections, checks, error_type, config.judge)
            drops = fluency_attempts(gate, pending, injections, checks)
            for record, injection, verdict, found, drop in zip(pending, injections, checks, judged, drops,
                                                               strict=True):
                attempts[record.id].append(_attempt(injection, verdict, found, drop))
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
            last = tried[-1]  # max_attempts >= 1: every item has at least one attempt
            results.append(ItemResult(record.id, error_type.value, False, None, None, False, last.difference,
                                      last.changed_tokens, last.reason, tried, {}, session))
    return results


def settings_key(config: InjectConfig, primary: str, fallback: str | None, judge: str | None = None,
                 fluency: str | None = None) -> str:
    """Hash of everything that changes an item's outcome, given the injectors' and the judge's
    fingerprints: the resume key (strategy and seed are not in it: they choose items, they do not
    change them)."""
    return stable_hash({"injector": primary, "verifier": config.verifier.model_dump(mode="json"),
                        "max_attempts": config.max_attempts, "fallback": fallback,
                        "fallback_attempts": config.fallback_attempts, "judge": judge,
                        "accept_unknown": config.judge.accept_unknown}
                       # only when the gate is on, so stores made without it keep their key
                       | ({"fluency": fluency} if fluency is not None else {}))


def build_judge(config: JudgeConfig) -> Judge | None:
    """The run's judge (None for ``none``), built, not loaded."""
    if config.name == "none":
        return None
    from seapo.judge.combined import make_judge

    llm = None
    if config.name == "llm":
        from seapo.judge import JUDGES

        cls = JUDGES.get("llm")
        llm = cls(cls.config_class.model_validate(config.llm))
    return make_judge(config.name, llm=llm)


def _build_injector(name: str, config: InjectConfig) -> Injector:
    """A built-in reads its own section (``llm``, ``rules``), a third-party one ``injector_options``."""
    section = getattr(config, name, None)
    settings = section if isinstance(section, SeapoConfig) else config.injector_options
    return make_injector(name, settings, verifier=config.verifier)


TOKEN_COUNTS = ("prompt_tokens", "completion_tokens")


@dataclass
class ChunkRunner:
    """What turns a chunk of planned items into results: built once per process -- the local run's,
    or each Ray actor's (:mod:`seapo.distributed`) -- and called chunk by chunk (:meth:`run`), so a
    local and a Ray run do the same work on every item."""

    config: InjectConfig
    primary: Injector
    fallback: Injector | None
    verifier: Verifier
    judge: Judge | None
    gate: FluencyGate | None
    session: str
    token_usage: dict[str, dict[str, int]] = field(default_factory=dict)
    """A served model's token counts per error type, over every :meth:`run` of this runner."""

    @classmethod
    def build(cls, config: InjectConfig, session: str, injector: Injector | None = None,
              judge: Judge | None = None) -> ChunkRunner:
        """Built, not loaded; ``injector`` and ``judge`` replace the ones the config names."""
        primary = injector or _build_injector(config.injector, config)
        fallback = _build_injector("rules", config) if config.fallback == "rules" and primary.name != "rules" else None
        return cls(config, primary, fallback, Verifier(config.verifier),
                   judge if judge is not None else build_judge(config.judge),
                   FluencyGate(config.fluency) if config.fluency.enabled else None, session)

    @property
    def usage(self) -> dict[str, int] | None:
        """The primary backend's running token counts (a served model), else None."""
        return getattr(getattr(self.primary, "backend", None), "usage", None)

    @property
    def token_budget(self) -> int | None:
        """The primary backend's ``token_budget`` (a served model's), else None."""
        backend = getattr(self.primary, "backend", None)
        return getattr(getattr(backend, "config", None), "token_budget", None)

    def run(self, items: Sequence[tuple[Record, ErrorType]]) -> list[ItemResult]:
        """:func:`run_chunk` on the items of each error type (types in order of first appearance,
        records in their order); one result per item."""
        by_type: dict[ErrorType, list[Record]] = {}
        for record, et in items:
            by_type.setdefault(et, []).append(record)
        results: list[ItemResult] = []
        for et, chunk in by_type.items():
            usage = self.usage
            before = dict(usage) if usage is not None else {}
            try:
                results += run_chunk(chunk, et, self.primary, self.fallback, self.verifier, self.config,
                                     self.session, self.judge, self.gate)
            finally:
                if usage is not None:
                    counts = self.token_usage.setdefault(et.value, dict.fromkeys(TOKEN_COUNTS, 0))
                    for k in TOKEN_COUNTS:
                        counts[k] += usage.get(k, 0) - before.get(k, 0)
        return results

    def close(self, *, primary: bool = True, judge: bool = True) -> None:
        """Release what was loaded (``primary``/``judge`` False: those belong to the caller)."""
        if primary:
            self.primary.close()
        if self.fallback is not None:
            self.fallback.close()
        if self.judge is not None and judge:
            self.judge.close()
        if self.gate is not None:
            self.gate.close()


def _tokens(usage: dict[str, dict[str, int]]) -> int:
    """Prompt + completion tokens over every type of a ``token_usage`` mapping."""
    return sum(c.get("prompt_tokens", 0) + c.get("completion_tokens", 0) for c in usage.values())


def ray_worker(config: InjectConfig, session: str, injector: Injector | None = None, judge: Judge | None = None,
               ledger: Any = None) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Runs in each Ray actor, once: builds and loads its :class:`ChunkRunner`, and returns the
    function that maps a batch of ``{"record" (JSON), "error_type"}`` rows to the results as store
    rows (:func:`~seapo.inject.store.item_row`) plus ``usage``: the batch's token counts per type
    (JSON) on its first row, else None.

    ``ledger`` (a :class:`~seapo.distributed.TokenLedger` actor, when the backend has a
    ``token_budget``) makes the budget run-wide: before each batch the backend is told what the
    other actors have spent (it checks the sum before every request), and a batch that finds the
    budget already spent raises :class:`BudgetExceeded` without sending anything."""
    from seapo.distributed import RunWideBudget

    runner = ChunkRunner.build(config, session, injector, judge)
    runner.primary.load()  # once per actor, before the first batch
    if runner.judge is not None:
        runner.judge.load()
    # a budget means a served model: its backend
    budget = (RunWideBudget(ledger, runner.primary.backend)  # type: ignore[attr-defined]
              if ledger is not None and runner.token_budget is not None else None)

    def work(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        before = {et: dict(c) for et, c in runner.token_usage.items()}
        if budget is not None:
            budget.check(_tokens(runner.token_usage))
        results = runner.run([(Record.from_dict(json.loads(r["record"])), ErrorType(r["error_type"]))
                              for r in rows])
        out: list[dict[str, Any]] = [{**item_row(item), "usage": None} for item in results]
        if runner.usage is not None and out:
            delta = {et: {k: c[k] - before.get(et, {}).get(k, 0) for k in TOKEN_COUNTS}
                     for et, c in runner.token_usage.items()}
            out[0]["usage"] = json.dumps(delta)
            if budget is not None:
                budget.report(_tokens(delta))
        return out

    return work


def _read_records(records: str | Path | Sequence[Record], limit: int | None) -> list[Record]:
    if not isinstance(records, (list, tuple)):
        records = read_records(records)
    return list(records)[:limit] if limit else list(records)


def inject(records: str | Path | Sequence[Record], out_dir: str | Path, config: InjectConfig | None = None,
           *, injector: Injector | None = None, judge: Judge | None = None) -> InjectResult:
    """Make verified negatives for every record and write the run directory.

    ``records``: a ``seapo prepare`` JSONL file or a list of :class:`Record`. ``injector``
    overrides the one the config would build (useful to share a loaded model); ``judge`` likewise
    overrides ``config.judge.name`` (neither is closed by the run; on Ray, ``config.ray``, both
    are pickled to every actor, so pass them unloaded). Resumable:
    running again with the same settings continues where the last run stopped. One process at a
    time per ``out_dir`` (a second one gets :class:`~seapo.outputs.FolderInUse`); the output files
    are published as one set (``_complete.json``, see :mod:`seapo.outputs`).
    """
    config = config or InjectConfig()
    out_dir = Path(out_dir)
    with folder_lock(out_dir, fix=f"wait for it to finish (or stop it), or choose another --out than {out_dir}"):
        remove_legacy_temps(out_dir, OUTPUT_FILES.values())
        return _inject(records, out_dir, config, injector, judge)


def _budget_message(exc: BaseException, store: InjectionStore, out_dir: Path) -> BudgetExceeded:
    from seapo.distributed import budget_message

    return budget_message(exc, len(store.done_keys()), out_dir / STORE_FILE)


def _inject(records: str | Path | Sequence[Record], out_dir: Path, config: InjectConfig,
            injector: Injector | None, given_judge: Judge | None) -> InjectResult:
    started = time.time()
    records = _read_records(records, config.limit)
    unique = list({r.id: r for r in records}.values())  # the same record twice is injected once
    strategy = make_strategy(config.strategy, config.strategy_options)
    plan: Plan = strategy.plan(unique, config.error_types, config.seed)
    plan_summary = strategy.describe(plan)  # realised (and, for the profile strategies, target) distribution
    session = uuid.uuid4().hex[:8]
    runner = ChunkRunner.build(config, session, injector, given_judge)
    primary, fallback, judge, gate = runner.primary, runner.fallback, runner.judge, runner.gate
    chunk_size = config.chunk_size or DEFAULT_CHUNKS.get(primary.name, 128)

    # A model's fingerprint hashes its weights (memoized, but still a walk of the folder): once per run.
    fingerprint = primary.fingerprint()
    judge_fingerprint = judge.fingerprint() if judge is not None else None
    fluency_fingerprint = gate.fingerprint() if gate is not None else None
    store = InjectionStore(out_dir / STORE_FILE,
                           settings_key(config, fingerprint, fallback.fingerprint() if fallback else None,
                                        judge_fingerprint, fluency_fingerprint))
    done = store.done_keys()
    planned = [(r, et) for r in unique for et in plan[r.id]]
    metered = runner.usage is not None  # a served model's token counts
    ray_info: dict[str, Any] | None = None
    try:
        with make_progress(disable=None if config.show_progress is None else not config.show_progress) as bar:
            tasks: dict[str, Any] = {}
            todo: dict[ErrorType, list[Record]] = {}  # what the store lacks, by type, records in order
            for et in config.error_types:
                mine = [r for r, t in planned if t is et]
                if not mine:
                    continue
                if metered:
                    runner.token_usage.setdefault(et.value, dict.fromkeys(TOKEN_COUNTS, 0))
                todo[et] = [r for r in mine if (r.id, et.value) not in done]
                tasks[et.value] = bar.add_task(f"{et.value:>13}", total=len(mine),
                                               completed=len(mine) - len(todo[et]))
            try:
                if config.ray.enabled and any(todo.values()):
                    ray_info = _run_on_ray([(r, et) for et, rs in todo.items() for r in rs], runner, store, bar,
                                           tasks, chunk_size, config, injector, given_judge)
                else:
                    for et, left in todo.items():
                        for start in range(0, len(left), chunk_size):
                            chunk = left[start:start + chunk_size]
                            store.put_many(runner.run([(r, et) for r in chunk]))
                            bar.advance(tasks[et.value], len(chunk))
            except BudgetExceeded as exc:  # finished chunks are stored; the one in flight is not
                raise _budget_message(exc, store, out_dir) from None
        items = store.get_all()
    finally:
        store.close()
        runner.close(primary=injector is None, judge=given_judge is None)
    # What decides the outputs: the items' settings, the plan's, and which records.
    output_settings = {"settings_key": store.settings, "strategy": config.strategy,
                       "strategy_options": config.strategy_options, "seed": config.seed,
                       "error_types": [et.value for et in config.error_types],
                       "records": stable_hash([r.id for r in records]), "plan": plan_summary}
    summary = write_outputs(out_dir, records, items, plan, config.error_types, config.strategy, {
        "injector": config.injector,
        "injector_fingerprint": fingerprint,
        "fallback": config.fallback,
        "judge": judge.name if judge is not None else "none",
        "judge_fingerprint": judge_fingerprint,
        "fluency": {"max_drop": config.fluency.max_drop, "fingerprint": fluency_fingerprint} if gate else "off",
        "settings_key": store.settings,
        "seed": config.seed,
        "wall_time_s": round(time.time() - started, 2),
        "resumed_items": sum(1 for r, et in planned if (r.id, et.value) in done),
        "plan": plan_summary,
        **({"token_usage": runner.token_usage} if metered else {}),
        **({"ray": ray_info} if ray_info is not None else {}),
    }, settings=output_settings, audit=config.audit)
    return InjectResult(out_dir, summary)


def _run_on_ray(todo: list[tuple[Record, ErrorType]], runner: ChunkRunner, store: InjectionStore, bar: Any,
                tasks: dict[str, Any], chunk_size: int, config: InjectConfig, injector: Injector | None,
                judge: Judge | None) -> dict[str, Any]:
    """The items of ``todo`` on Ray Data's actor pool, ``chunk_size`` per batch; each finished batch
    is committed to the store as it streams back (one transaction, as a local chunk)."""
    from seapo import distributed

    started = distributed.connect(config.ray)
    try:
        workers = distributed.pool_size(config.ray)
        budget = runner.token_budget
        ledger = distributed.token_ledger() if budget is not None else None
        make = functools.partial(ray_worker, config, runner.session, injector, judge, ledger)
        spent, stored = _tokens(runner.token_usage), 0
        rows = [{"record": json.dumps({"id": r.id, "prompt": r.prompt, "response": r.response, "rejected": r.rejected,
                                       "source": r.source}, ensure_ascii=False), "error_type": et.value}
                for r, et in todo]
        try:
            # closed at once when this loop stops early (a spent budget): its actors are stopped then
            with contextlib.closing(distributed.map_batches(rows, make, config.ray, chunk_size)) as batches:
                for out in batches:
                    store.put_rows(out)  # the workers' rows as they are: the driver decodes no result
                    for et, n in Counter(o["error_type"] for o in out).items():
                        bar.advance(tasks[et], n)
                    for o in out:
                        for et, counts in (json.loads(o["usage"]) if o["usage"] else {}).items():
                            total = runner.token_usage.setdefault(et, dict.fromkeys(TOKEN_COUNTS, 0))
                            for k in TOKEN_COUNTS:
                                total[k] += counts.get(k, 0)
                    stored += len(out)
                    if stored < len(rows):
                        distributed.stopped_by_budget(_tokens(runner.token_usage) - spent, budget, workers)
        except Exception as exc:
            distributed.reraise_seapo_error(exc)
            raise
    finally:
        distributed.disconnect(started)
    return {"address": config.ray.address, "workers": workers, "batch_size": chunk_size}
