"""``seapo eval``: run a suite of tasks on one model, resumably, and write ``metrics.json``.

Layout of ``--out DIR``::

    DIR/cache.sqlite                     per-item results of every model evaluated here
    DIR/<run name>/metrics.json          scores, sample counts, protocol, versions, model spec
    DIR/<run name>/predictions/<task>.jsonl   one line per item: output, extracted answer, metrics
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from seapo.errors import InputError
from seapo.evaluate import builders
from seapo.evaluate.cache import ResultCache
from seapo.evaluate.tasks import TaskSpec, get_task, suite_tasks
from seapo.io import write_json, write_jsonl


@dataclass
class EvalConfig:
    """Settings of one evaluation run (``seapo eval``)."""

    suite: str = "paper"
    """Named task list (``paper``: TruthfulQA MC, MMLU, GSM8K, MATH, BBH, HumanEval). Ignored when
    ``tasks`` is given."""
    tasks: list[str] | None = None
    """Task names (or task YAML paths). ``name:group`` restricts a task to some groups, e.g.
    ``mmlu:anatomy`` or ``bbh:navigate``; repeat to add more groups."""
    limit: int | None = None
    """Evaluate only the first N items of each group (each MMLU subject, each BBH task; the whole
    task when it has no groups). Deterministic; the report marks the result as a subset."""
    data_dir: str | None = None
    """Folder with the local data files named in the task YAMLs (e.g. ``../shared/data/eval``).
    Given: only local files are read and a task whose files are missing is skipped with a note.
    None: data comes from the Hugging Face Hub."""
    out: str = "runs/eval"
    """Output folder: ``cache.sqlite`` plus one sub-folder per evaluated model."""
    run_name: str | None = None
    """Sub-folder name for this model (default: derived from the model argument)."""
    batch_size: int = 16
    """Rows per forward pass (log-likelihood) or prompts per ``generate`` call."""
    dtype: str = "auto"
    """auto (bf16 on GPUs and CPUs with native bf16, else fp32), bf16, fp16 or fp32."""
    device: str | None = None
    """``cuda``, ``cpu``...; default: CUDA when present."""
    engine: Literal["auto", "lm-eval", "native"] = "auto"
    """Who builds prompts, parses answers and computes metrics. ``lm-eval``: lm-evaluation-harness,
    from its own task YAMLs (TruthfulQA MC, MMLU, GSM8K, BBH, MATH; HumanEval always runs in
    seapo's sandbox). ``native``: seapo's own implementation of the same protocol (no lm-eval
    needed; an independent cross-check). ``auto``: lm-eval where it is installed and can run
    the task, native otherwise; ``metrics.json`` names the engine of every task."""
    lm_backend: Literal["seapo", "hf"] = "seapo"
    """The model under lm-eval: ``seapo`` (seapo's batched, prefix-cached scorer wrapped as an
    lm-eval model; several times faster) or ``hf`` (lm-eval's own ``HFLM``)."""
    num_samples: int | None = None
    """Override the number of sampled completions of code tasks (HumanEval: 20 for pass@10);
    0 computes pass@1 only."""
    chunk_size: int = 64
    """Items computed between two cache commits: at most this much work is lost on interruption."""
    use_cache: bool = True
    """Reuse per-item results cached for the same model, task protocol and item."""
    seed: int = 0
    """Seed of sampled generations."""
    threads: int | None = None
    """CPU threads for torch during the run (None: torch's default). On a CPU shared with other
    busy processes, 1 thread can be many times faster than spinning OpenMP threads."""
    trust_remote_code: bool = False
    """Run code shipped with a Hub model. Off unless you trust the model's authors."""


@dataclass
class TaskResult:
    """Scores of one task."""

    name: str
    dimension: str
    metrics: dict[str, float]
    """Metric -> score in [0, 1] (``mean`` or ``macro`` over groups, as the task says)."""
    n: int
    """Items evaluated."""
    n_available: int
    """Items the task's data has (more than ``n`` when ``limit`` or groups restrict it)."""
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per-group scores (MMLU subjects, BBH tasks)."""
    cached: int = 0
    """Items taken from the cache instead of being computed."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Protocol settings: shots, prompt, stop sequences, generation length, samples, engine."""
    source: str = ""
    """Where the data came from."""
    seconds: float = 0.0
    """Wall time spent on this task."""

    @property
    def subset(self) -> bool:
        return self.n < self.n_available


@dataclass
class EvalResult:
    """What :func:`evaluate` returns; ``metrics.json`` is ``to_dict()``."""

    model: dict[str, str]
    tasks: dict[str, TaskResult]
    skipped: dict[str, str]
    """Task -> why it was not evaluated (e.g. "data not available: ...")."""
    dimensions: dict[str, float]
    """Dimension -> mean of its tasks' headline metrics."""
    config: dict[str, Any]
    out_dir: Path
    versions: dict[str, str]
    seconds: float = 0.0

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.json"

    def to_dict(self) -> dict[str, Any]:
        tasks = {}
        for name, t in self.tasks.items():
            entry = asdict(t)
            entry["subset"] = t.subset
            tasks[name] = entry
        return {
            "model": self.model, "tasks": tasks, "skipped": self.skipped, "dimensions": self.dimensions,
            "subset": any(t.subset for t in self.tasks.values()), "config": self.config,
            "versions": self.versions, "seconds": round(self.seconds, 2),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }


def parse_task_args(names: list[str]) -> dict[str, list[str] | None]:
    """``["mmlu:anatomy", "mmlu:virology", "gsm8k"]`` -> ``{"mmlu": [...], "gsm8k": None}``."""
    out: dict[str, list[str] | None] = {}
    for raw in names:
        name, _, group = raw.strip().partition(":")
        if not name:
            continue
        if group:
            current = out.get(name)
            out[name] = [*(current or []), group]
        else:
            out[name] = None
    return out


def run_name_for(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec.strip().strip("/")).strip("_")[-80:] or "model"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for pkg in ("seapo", "torch", "transformers", "datasets", "lm_eval"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def select_items(data: builders.TaskData, groups: list[str] | None, limit: int | None,
                 task: str) -> list[dict]:
    """Deterministic subset: the chosen groups, then the first ``limit`` items of each group."""
    items = data.items
    if groups is not None:
        known = {it["group"] for it in items}
        unknown = [g for g in groups if g not in known]
        if unknown:
            raise InputError(f"task '{task}' has no group(s) {unknown}; known: {', '.join(sorted(known))}",
                             field="tasks")
        items = [it for it in items if it["group"] in groups]
    if limit is not None:
        seen: dict[str, int] = {}
        kept = []
        for it in items:
            seen[it["group"]] = seen.get(it["group"], 0) + 1
            if seen[it["group"]] <= limit:
                kept.append(it)
        items = kept
    return items


def evaluate(model: Any, config: EvalConfig | None = None) -> EvalResult:
    """Evaluate ``model`` (any :func:`seapo.models.resolve_model` argument, or a loaded
    :class:`~seapo.evaluate.lm.EvalLM`) on the configured tasks; writes metrics and predictions.
    """
    import torch

    config = config or EvalConfig()
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _evaluate(model, config, started)
    finally:
        torch.set_num_threads(threads_before)


def _evaluate(model: Any, config: EvalConfig, started: float) -> EvalResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from seapo.evaluate.lm import EvalLM

    requested = parse_task_args(config.tasks) if config.tasks else {t: None for t in suite_tasks(config.suite)}
    specs = {name: get_task(name) for name in requested}
    data_dir = Path(config.data_dir).expanduser() if config.data_dir else None
    if data_dir is not None and not data_dir.is_dir():
        raise InputError("data folder does not exist", path=str(data_dir), field="data_dir")

    # Data first: a bad file or group fails before minutes of model loading.
    results: dict[str, TaskResult] = {}
    skipped: dict[str, str] = {}
    loaded: dict[str, tuple[TaskSpec, builders.TaskData, list[dict]]] = {}
    for name, spec in specs.items():
        try:
            data = builders.LOADERS[spec.loader](spec, data_dir)
        except builders.DataUnavailable as exc:
            skipped[spec.name] = str(exc)
            continue
        loaded[name] = (spec, data, select_items(data, requested[name], config.limit, spec.name))

    lm = model if isinstance(model, EvalLM) else EvalLM(
        str(model), dtype=config.dtype, device=config.device, batch_size=config.batch_size,
        trust_remote_code=config.trust_remote_code)
    lm.batch_size = config.batch_size
    out_dir = Path(config.out) / (config.run_name or run_name_for(lm.resolved.spec))
    cache = ResultCache(Path(config.out) / "cache.sqlite")
    fingerprint = lm.fingerprint()

    engines = {name: choose_engine(spec, config) for name, (spec, _, _) in loaded.items()}
    lmeval_model = None
    if any(engine == "lm-eval" for engine, _ in engines.values()):
        from seapo.evaluate import lmeval_engine

        lmeval_model = lmeval_engine.make_model(lm, config.lm_backend, config.batch_size)

    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn()) as progress:
            for name, (spec, data, items) in loaded.items():
                t0 = time.perf_counter()
                engine, note = engines[name]
                records, cached = _run_task(lm, spec, data, items, config, cache, fingerprint, progress,
                                            lmeval_model if engine == "lm-eval" else None)
                write_jsonl(out_dir / "predictions" / f"{spec.name}.jsonl",
                            ({"task": spec.name, **records[it["id"]]} for it in items))
                results[spec.name] = _aggregate(spec, data, items, records, cached, config, engine=engine)
                if note:
                    results[spec.name].settings["engine_note"] = note
                results[spec.name].seconds = round(time.perf_counter() - t0, 2)
    finally:
        cache.close()

    dimensions: dict[str, list[float]] = {}
    for name, res in results.items():
        for metric in specs_by_name(specs)[name].headline_metrics:
            if metric in res.metrics:
                dimensions.setdefault(res.dimension, []).append(res.metrics[metric])
    result = EvalResult(
        model={"spec": lm.resolved.spec, "name": lm.resolved.name, "kind": lm.resolved.kind,
               "path": lm.resolved.path, "fingerprint": fingerprint, "dtype": lm.dtype_name},
        tasks=results, skipped=skipped,
        dimensions={d: sum(v) / len(v) for d, v in dimensions.items()},
        config={k: v for k, v in asdict(config).items()}, out_dir=out_dir, versions=package_versions(),
        seconds=time.perf_counter() - started,
    )
    write_json(result.metrics_path, result.to_dict())
    return result


def specs_by_name(specs: dict[str, TaskSpec]) -> dict[str, TaskSpec]:
    return {spec.name: spec for spec in specs.values()}


def choose_engine(spec: TaskSpec, config: EvalConfig) -> tuple[str, str | None]:
    """``("lm-eval" | "native", note)`` for one task; the note says why lm-eval was not used."""
    if config.engine == "native":
        return "native", None
    from seapo.evaluate import lmeval_engine

    reason = lmeval_engine.unsupported_reason(spec)
    if reason is None:
        return "lm-eval", None
    if config.engine == "lm-eval" and not lmeval_engine.installed():
        raise InputError(f"--engine lm-eval: {reason}; or use --engine native", field="engine")
    return "native", reason


def _cache_key(spec: TaskSpec, config: EvalConfig, lmeval: bool = False) -> str:
    samples = spec.generation.samples if config.num_samples is None else config.num_samples
    extra = f":s{samples}:seed{config.seed}" if spec.kind == "code" else ""
    # lm-eval parses answers with its own filters: its results are cached apart from native ones.
    engine = f":lm-eval-{config.lm_backend}" if lmeval else ""
    return f"{spec.name}:{spec.protocol_hash()}{extra}{engine}"


def _run_task(lm, spec: TaskSpec, data: builders.TaskData, items: list[dict], config: EvalConfig,
              cache: ResultCache, fingerprint: str, progress, lmeval_model=None) -> tuple[dict[str, dict], int]:
    """Compute the items not cached yet, ``chunk_size`` at a time, committing each chunk."""
    key = _cache_key(spec, config, lmeval=lmeval_model is not None)
    records = cache.get_many(fingerprint, key, (it["id"] for it in items)) if config.use_cache else {}
    pending = [it for it in items if it["id"] not in records]
    label = f"{spec.name} (lm-eval)" if lmeval_model is not None else spec.name
    bar = progress.add_task(label, total=len(items), completed=len(items) - len(pending))
    for start in range(0, len(pending), config.chunk_size):
        chunk = pending[start:start + config.chunk_size]
        if lmeval_model is not None:
            from seapo.evaluate import lmeval_engine

            size = len(chunk)
            new = lmeval_engine.run_chunk(lmeval_model, spec, data, chunk,
                                          advance=lambda fraction, size=size: progress.advance(bar, fraction * size))
        elif spec.kind in ("multiple_choice", "truthfulqa_mc"):
            new = _loglik_chunk(lm, spec, data, chunk, progress, bar)
        else:
            new = _generate_chunk(lm, spec, data, chunk, config, progress, bar)
        cache.put_many(fingerprint, key, new)
        records.update(new)
    return records, len(items) - len(pending)


def continuations_of(spec: TaskSpec, item: dict) -> list[str]:
    """The answer texts scored for an item (without the delimiter)."""
    if spec.kind == "truthfulqa_mc":
        return list(dict.fromkeys(item["true"] + item["false"]))
    return list(spec.choice_texts or item["choices"])


def _loglik_chunk(lm, spec, data, chunk, progress, bar) -> dict[str, dict]:
    from seapo.evaluate.lm import LoglikRequest

    requests, groups, owners = [], [], []
    for item in chunk:
        context = builders.PROMPTS[spec.prompt](item, data.fewshot.get(item["group"], []), spec)
        for text in continuations_of(spec, item):
            requests.append(LoglikRequest(context, spec.target_delimiter + text))
            groups.append(item["group"])
            owners.append((item["id"], text))
    def advance(n_requests: int) -> None:  # the bar counts items; requests finish in length order
        progress.advance(bar, n_requests * len(chunk) / len(requests))

    scores = lm.loglikelihood(requests, groups=groups, progress=advance)
    per_item: dict[str, dict[str, float]] = {}
    for (item_id, text), score in zip(owners, scores, strict=True):
        per_item.setdefault(item_id, {})[text] = score
    out = {}
    for item in chunk:
        scored = dict(item, continuations=continuations_of(spec, item))
        metrics = builders.SCORERS[spec.scorer](scored, per_item[item["id"]])
        out[item["id"]] = prediction_record(item, metrics, logliks=per_item[item["id"]])
    return out


def _generate_chunk(lm, spec, data, chunk, config, progress, bar) -> dict[str, dict]:
    prompts = [builders.PROMPTS[spec.prompt](it, data.fewshot.get(it["group"], []), spec) for it in chunk]
    # Sub-steps of the bar: greedy pass, then sampled pass (code tasks).
    samples = spec.generation.samples if config.num_samples is None else config.num_samples
    share = 1.0 / (2 if spec.kind == "code" and samples else 1)

    def advance(n: int) -> None:
        progress.advance(bar, n * share)

    greedy = lm.generate(prompts, max_new_tokens=spec.max_new_tokens, stop=spec.stop, progress=advance)
    sampled = [[] for _ in chunk]
    if spec.kind == "code" and samples:
        sampled = lm.generate(prompts, max_new_tokens=spec.max_new_tokens, stop=spec.stop,
                              temperature=spec.generation.temperature, top_p=spec.generation.top_p,
                              num_samples=samples, seed=config.seed, progress=advance)
    out = {}
    for item, g, s in zip(chunk, greedy, sampled, strict=True):
        outputs = [g[0].text] + [x.text for x in s]
        metrics = builders.SCORERS[spec.scorer](item, outputs)
        extra: dict[str, Any] = {"output": g[0].text, "finish_reason": g[0].finish_reason}
        if s:
            extra["samples"] = [x.text for x in s]
        out[item["id"]] = prediction_record(item, metrics, **extra)
    return out


def prediction_record(item: dict, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A predictions line: item id, group, reference, numeric metrics and everything else scored."""
    numbers = {k: v for k, v in metrics.items() if isinstance(v, float)}
    details = {k: v for k, v in metrics.items() if not isinstance(v, float)}
    reference = {k: item[k] for k in ("target", "label", "best") if k in item}
    return {"id": item["id"], "group": item["group"], **reference, "metrics": numbers, **details, **extra}


def _aggregate(spec: TaskSpec, data: builders.TaskData, items: list[dict], records: dict[str, dict],
               cached: int, config: EvalConfig, engine: str) -> TaskResult:
    by_group: dict[str, dict[str, list[float]]] = {}
    for it in items:
        for metric, value in records[it["id"]]["metrics"].items():
            by_group.setdefault(it["group"], {}).setdefault(metric, []).append(value)
    groups = {g: {m: sum(v) / len(v) for m, v in ms.items()} for g, ms in by_group.items()}
    metrics: dict[str, float] = {}
    for metric in spec.metrics:
        if spec.aggregate == "macro":
            values = [gm[metric] for gm in groups.values() if metric in gm]
        else:
            values = [v for ms in by_group.values() for v in ms.get(metric, [])]
        if values:
            metrics[metric] = sum(values) / len(values)
    samples = spec.generation.samples if config.num_samples is None else config.num_samples
    settings: dict[str, Any] = {"kind": spec.kind, "fewshot": spec.fewshot, "prompt": spec.prompt,
                                "limit": config.limit, "engine": engine, "aggregate": spec.aggregate,
                                "protocol_hash": spec.protocol_hash()}
    if spec.kind in ("generate", "code"):
        settings.update(stop=spec.stop, max_new_tokens=spec.max_new_tokens, decoding="greedy")
    if spec.kind == "code":
        settings.update(samples=samples, temperature=spec.generation.temperature, top_p=spec.generation.top_p)
    return TaskResult(name=spec.name, dimension=spec.dimension, metrics=metrics, n=len(items),
                      n_available=len(data.items), groups=groups if spec.aggregate == "macro" else {},
                      cached=cached, settings=settings, source=data.source)
