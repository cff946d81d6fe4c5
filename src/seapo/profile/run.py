"""``seapo profile``: the policy answers each prompt, a judge labels each answer, and the counts
become the policy's own error-type distribution (``profile.json``), which the ``profile`` and
``top`` strategies of ``seapo inject`` follow.

Prompts are processed in chunks: the policy answers a chunk (one ``generate`` call, batched by the
backend), the judge labels it (one ``judge`` call), and both are committed to the SQLite store in
one transaction (:mod:`seapo.profile.store`). A rerun with the same settings skips what the store
holds; a rerun with another judge reuses the answers. The output files are one output set
(:mod:`seapo.outputs`), written after the last chunk.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seapo.backends import GenerationBackend, GenerationRequest, make_backend
from seapo.errors import BudgetExceeded, InputError
from seapo.fingerprint import stable_hash
from seapo.inject.error_types import ALL_ERROR_TYPES
from seapo.io import write_json, write_jsonl
from seapo.judge.base import Judge, Verdict, verdict
from seapo.outputs import OutputSet, folder_lock
from seapo.profile.config import PROMPTS, ProfileConfig
from seapo.profile.data import ProfileItem, load_items
from seapo.profile.stats import INTERVALS, summarize
from seapo.profile.store import Answer, ProfileStore
from seapo.progress import console, make_progress

STAGE = "profile"
STORE_FILE = "profile.sqlite"
OUTPUT_FILES = {"profile": "profile.json", "verdicts": "verdicts.jsonl", "chart": "profile.png"}
FORMAT = 1


@dataclass
class ProfileResult:
    out_dir: Path
    profile: dict[str, Any]

    @property
    def profile_path(self) -> Path:
        return self.out_dir / OUTPUT_FILES["profile"]

    @property
    def verdicts_path(self) -> Path:
        return self.out_dir / OUTPUT_FILES["verdicts"]

    @property
    def chart_path(self) -> Path:
        return self.out_dir / OUTPUT_FILES["chart"]


def build_judge(config: ProfileConfig) -> Judge:
    """The judge ``config.judge`` names (:func:`seapo.judge.combined.make_judge`: ``llm`` is the
    reference judge first, then the LLM judge of the ``llm`` section where it says unknown)."""
    from seapo.judge.combined import make_judge
    from seapo.judge.llm import LLMJudge

    judge = make_judge(config.judge, llm=LLMJudge(config.llm) if config.judge == "llm" else None)
    assert judge is not None  # "none" is not a profile judge
    return judge


def policy_request(item: ProfileItem, fmt: str, config: ProfileConfig) -> GenerationRequest:
    template = config.prompt_template or PROMPTS.get(fmt)
    messages = item.messages() if template is None else [{"role": "user",
                                                          "content": template.format(question=item.question)}]
    return GenerationRequest(messages=messages, max_new_tokens=config.max_new_tokens,
                             temperature=config.temperature, seed=config.seed)


def _unanswered(reason: str) -> dict[str, Any]:
    """The verdict of an item the policy failed on: nothing to judge, every type unknown."""
    v = verdict("none", f"not judged: the policy produced no answer ({reason})")
    v.details = {"policy_error": reason}
    return v.to_dict()


def profile(out_dir: str | Path, config: ProfileConfig | None = None) -> ProfileResult:
    """Profile ``config.policy`` on ``config.data`` into ``out_dir`` (resumable, one process per
    folder: a second gets :class:`~seapo.outputs.FolderInUse`)."""
    config = config or ProfileConfig()
    if config.data is None:
        raise InputError("no data to profile on: give --data (GSM8K JSONL, the TruthfulQA CSV or records JSONL)",
                         field="data")
    out_dir = Path(out_dir)
    with folder_lock(out_dir, fix=f"wait for it to finish (or stop it), or choose another --out than {out_dir}"):
        return _profile(out_dir, config)


def _profile(out_dir: Path, config: ProfileConfig) -> ProfileResult:
    started = time.time()
    assert config.data is not None
    items, fmt = load_items(config.data, config.format, config.limit)
    if not items:
        raise InputError("no prompts to profile", path=config.data)
    warnings = []
    if fmt == "records" and config.judge == "reference":
        warnings.append("records carry no reference answers: the reference judge says 'unknown' for every answer "
                        "that its structural checks cannot decide; use --judge llm")
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    backend = make_backend(config.policy)
    judge = build_judge(config)
    template = config.prompt_template or PROMPTS.get(fmt)
    gen_key = stable_hash([backend.fingerprint(), config.max_new_tokens, config.temperature, config.seed,
                           template, fmt])
    judge_key = judge.fingerprint()
    store = ProfileStore(out_dir / STORE_FILE, gen_key, judge_key)
    answers, verdicts = store.answers(), store.verdicts()
    resumed = sum(1 for it in items if it.id in verdicts)
    todo = [it for it in items if it.id not in verdicts]
    meters = TokenMeters(backend, judge)
    try:
        with make_progress(disable=None if config.show_progress is None else not config.show_progress) as bar:
            task = bar.add_task("profile", total=len(items), completed=len(items) - len(todo))

            def commit(new: list[tuple[str, Answer]], found: dict[str, dict[str, Any]]) -> None:
                store.put(new, found.items())
                answers.update(new)
                verdicts.update(found)
                bar.advance(task, len(found))

            try:
                if config.ray.enabled and todo:
                    _profile_on_ray(todo, answers, fmt, config, commit, meters)
                else:
                    for start in range(0, len(todo), config.chunk_size):
                        commit(*profile_chunk(todo[start:start + config.chunk_size], answers, backend, judge, fmt,
                                              config))
            except BudgetExceeded as exc:  # finished chunks are stored; the one in flight is not
                from seapo.distributed import budget_message

                raise budget_message(exc, len(verdicts), out_dir / STORE_FILE) from None
    finally:
        store.close()
        backend.close()
        judge.close()
    figures = _write(out_dir, config, items, fmt, answers, verdicts, {
        "policy": {"model": str(config.policy.model), "fingerprint": backend.fingerprint(), "generation_key": gen_key},
        "judge": {"name": config.judge, "fingerprint": judge_key},
        **({"token_usage": meters.usage()} if meters.metered else {}),
        "warnings": warnings, "resumed_items": resumed, "wall_time_s": round(time.time() - started, 2)})
    return ProfileResult(out_dir, figures)


TOKEN_COUNTS = ("prompt_tokens", "completion_tokens")


class TokenMeters:
    """A served model's token counts for this run, per part (``policy``, ``judge``: those whose
    backend counts them, i.e. an ``openai`` one): read from the backends' running totals, plus what a
    Ray run's actors report (:meth:`add`)."""

    def __init__(self, policy: GenerationBackend, judge: Judge) -> None:
        parts = {"policy": getattr(policy, "usage", None),
                 "judge": getattr(getattr(judge, "backend", None), "usage", None)}
        self.counters: dict[str, dict[str, int]] = {k: v for k, v in parts.items() if isinstance(v, dict)}
        self.start = {k: {c: v.get(c, 0) for c in TOKEN_COUNTS} for k, v in self.counters.items()}
        self.remote = {k: dict.fromkeys(TOKEN_COUNTS, 0) for k in self.counters}
        self.policy_budget: int | None = getattr(getattr(policy, "config", None), "token_budget", None)

    @property
    def metered(self) -> bool:
        return bool(self.counters)

    def usage(self) -> dict[str, dict[str, int]]:
        return {k: {c: v.get(c, 0) - self.start[k][c] + self.remote[k][c] for c in TOKEN_COUNTS}
                for k, v in self.counters.items()}

    def add(self, delta: dict[str, dict[str, int]]) -> None:
        for part, counts in delta.items():
            for c in TOKEN_COUNTS:
                self.remote.setdefault(part, dict.fromkeys(TOKEN_COUNTS, 0))[c] += counts.get(c, 0)

    def policy_tokens(self) -> int:
        return sum((self.usage().get("policy") or {}).values())


def profile_chunk(chunk: list[ProfileItem], answers: dict[str, Answer], backend: GenerationBackend, judge: Judge,
                  fmt: str, config: ProfileConfig) -> tuple[list[tuple[str, Answer]], dict[str, dict[str, Any]]]:
    """One chunk: the policy answers the items ``answers`` lacks (one ``generate`` call), the judge
    labels every answer (one ``judge`` call). Returns the new answers and each item's verdict;
    the local run and each Ray actor (:func:`ray_worker`) call it alike."""
    need = [it for it in chunk if it.id not in answers]
    new: list[tuple[str, Answer]] = []
    for it, out in zip(need, backend.generate([policy_request(it, fmt, config) for it in need]), strict=True):
        new.append((it.id, Answer(out.text, out.finish_reason, out.num_tokens, out.error)))
    have = {**{it.id: answers[it.id] for it in chunk if it.id in answers}, **dict(new)}
    judged = [it for it in chunk if have[it.id].error is None]
    found: dict[str, dict[str, Any]] = {it.id: _unanswered(str(have[it.id].error))
                                        for it in chunk if have[it.id].error is not None}
    for it, v in zip(judged, judge.judge([it.judge_item(have[it.id].text) for it in judged]), strict=True):
        found[it.id] = v.to_dict()
    return new, found


def _item_from_dict(row: dict[str, Any]) -> ProfileItem:
    return ProfileItem(row["id"], row["group"], row["question"], row["reference"], tuple(row["correct_answers"]),
                       tuple(row["incorrect_answers"]), tuple((role, text) for role, text in row["prompt"]))


def ray_worker(config: ProfileConfig, fmt: str, ledger: Any = None) -> Callable[[list[dict[str, Any]]],
                                                                                 list[dict[str, Any]]]:
    """Runs in each Ray actor, once: builds and loads the policy's backend and the judge, and returns
    the function that maps ``{"item", "answer"}`` rows (JSON; ``answer``: the store's, or None) to
    ``{"id", "answer" (new, or None), "verdict", "usage"}`` rows (JSON; ``usage``: the batch's token
    counts per part on its first row, for a served model, else None). ``ledger``: the run's
    :class:`~seapo.distributed.TokenLedger` when the policy has a ``token_budget`` (run-wide)."""
    from seapo.distributed import RunWideBudget

    backend, judge = make_backend(config.policy), build_judge(config)
    backend.load()
    judge.load()
    meters = TokenMeters(backend, judge)
    budget = RunWideBudget(ledger, backend) if ledger is not None and meters.policy_budget is not None else None

    def work(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        before = meters.usage()
        if budget is not None:
            budget.check(meters.policy_tokens())
        chunk = [_item_from_dict(json.loads(r["item"])) for r in rows]
        given = {it.id: Answer(**json.loads(r["answer"])) for it, r in zip(chunk, rows, strict=True)
                 if r["answer"] is not None}
        new, found = profile_chunk(chunk, given, backend, judge, fmt, config)
        made = dict(new)
        out = [{"id": it.id, "answer": json.dumps(asdict(made[it.id])) if it.id in made else None,
                "verdict": json.dumps(found[it.id], ensure_ascii=False), "usage": None} for it in chunk]
        if meters.metered and out:
            delta = {k: {c: v[c] - before[k][c] for c in TOKEN_COUNTS} for k, v in meters.usage().items()}
            out[0]["usage"] = json.dumps(delta)
            if budget is not None:
                budget.report(sum(delta.get("policy", {}).values()))
        return out

    return work


def _profile_on_ray(todo: list[ProfileItem], answers: dict[str, Answer], fmt: str, config: ProfileConfig,
                    commit: Callable[[list[tuple[str, Answer]], dict[str, dict[str, Any]]], None],
                    meters: TokenMeters) -> None:
    """The chunks of ``todo`` on Ray Data's actor pool (:mod:`seapo.distributed`); each finished
    batch is committed as it streams back, its token counts added to ``meters``; a policy
    ``token_budget`` counts every actor's tokens together."""
    from seapo import distributed

    rows = [{"item": json.dumps(asdict(it), ensure_ascii=False),
             "answer": json.dumps(asdict(answers[it.id]), ensure_ascii=False) if it.id in answers else None}
            for it in todo]
    started = distributed.connect(config.ray)
    try:
        budget = meters.policy_budget
        ledger = distributed.token_ledger() if budget is not None else None
        make = functools.partial(ray_worker, config, fmt, ledger)
        spent, done = meters.policy_tokens(), 0
        try:
            # closed at once when this loop stops early (a spent budget): its actors are stopped then
            with contextlib.closing(distributed.map_batches(rows, make, config.ray, config.chunk_size)) as batches:
                for out in batches:
                    commit([(o["id"], Answer(**json.loads(o["answer"]))) for o in out if o["answer"] is not None],
                           {o["id"]: json.loads(o["verdict"]) for o in out})
                    for o in out:
                        if o["usage"]:
                            meters.add(json.loads(o["usage"]))
                    done += len(out)
                    if done < len(rows):
                        distributed.stopped_by_budget(meters.policy_tokens() - spent, budget,
                                                      distributed.pool_size(config.ray))
        except Exception as exc:
            distributed.reraise_seapo_error(exc)
            raise
    finally:
        distributed.disconnect(started)


def _outcome(row: dict[str, Any]) -> tuple[frozenset, bool]:
    v = Verdict.from_dict(row)
    return v.errors, bool(v.unknown)


def _write(out_dir: Path, config: ProfileConfig, items: list[ProfileItem], fmt: str, answers: dict[str, Answer],
           verdicts: dict[str, dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for it in items:
        v, a = verdicts[it.id], answers[it.id]
        rows.append({"id": it.id, "group": it.group, "question": it.question, "reference": it.reference,
                     "correct_answers": list(it.correct_answers), "answer": a.text, "finish_reason": a.finish_reason,
                     "num_tokens": a.num_tokens, "policy_error": a.error, "findings": v["findings"],
                     "errors": v["errors"], "rationale": v["rationale"], "judge": v["judge"], "raw": v.get("raw"),
                     "details": v.get("details", {})})
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    figures = {
        "format": FORMAT,
        "data": config.data, "data_format": fmt, "items": len(items),
        **summarize([_outcome(verdicts[it.id]) for it in items], config.seed),
        "policy_errors": sum(1 for r in rows if r["policy_error"] is not None),
        "truncated_answers": sum(1 for r in rows if r["finish_reason"] == "length"),
        "intervals": INTERVALS,
        "groups": {g: summarize([_outcome(verdicts[r["id"]]) for r in members], config.seed)
                   for g, members in sorted(groups.items())},
        "judge_failures": _judge_failures(rows),
        "error_types": [t.value for t in ALL_ERROR_TYPES],
        **extra,
    }
    settings = {"generation_key": extra["policy"]["generation_key"], "judge": extra["judge"]["fingerprint"],
                "items": stable_hash([it.id for it in items]), "seed": config.seed}
    output_set = OutputSet(out_dir, STAGE, settings,
                           fix=f"rerun `seapo profile --data {config.data} --out {out_dir}` (it resumes)")
    output_set.begin()
    write_jsonl(out_dir / OUTPUT_FILES["verdicts"], rows)
    write_json(out_dir / OUTPUT_FILES["profile"], figures)
    plot_profile(figures, out_dir / OUTPUT_FILES["chart"])
    output_set.commit(OUTPUT_FILES.values())
    return figures


def _judge_failures(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The LLM judge's parse failures over every attempt, by kind (empty for model-free judges)."""
    total: dict[str, int] = {}
    for row in rows:
        for kind, n in (row["details"].get("failures") or {}).items():
            total[kind] = total.get(kind, 0) + n
    return dict(sorted(total.items()))


def plot_profile(figures: dict[str, Any], png_path: Path) -> Path:
    """Bar chart of the distribution over the three types with its 95% intervals, written atomically."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must come before pyplot
    import matplotlib.pyplot as plt

    from seapo.io import atomic_open

    names = [t.value for t in ALL_ERROR_TYPES]
    dist = figures["distribution"]
    shares = [dist[n]["share"] or 0.0 for n in names]
    low = [max(0.0, s - (dist[n]["low"] if dist[n]["low"] is not None else s)) for s, n in zip(shares, names,
                                                                                               strict=True)]
    high = [max(0.0, (dist[n]["high"] if dist[n]["high"] is not None else s) - s) for s, n in zip(shares, names,
                                                                                                  strict=True)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(names, shares, yerr=[low, high], capsize=6, color=["#c44e52", "#4c72b0", "#dd8452"])
    for i, n in enumerate(names):
        ax.text(i, shares[i] + high[i] + 0.02, str(figures["counts"][n]), ha="center")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of error findings")
    ax.set_title(f"{figures['erroneous']} erroneous of {figures['answers']} answers "
                 f"({figures['judged_correct']} correct, {figures['unknown']} unknown); 95% bootstrap CI",
                 fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(png_path) as f:  # a text file object: the PNG goes to its binary buffer
        fig.savefig(f.buffer, format="png", dpi=100)
    plt.close(fig)
    return png_path
