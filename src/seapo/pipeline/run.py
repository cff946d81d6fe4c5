"""``seapo run``: prepare -> [profile] -> inject -> train (+ held-out accuracy) -> [evaluate] -> report.md.

Each stage writes into its own folder of the run directory, published as one output set
(:mod:`seapo.outputs`), and a ``stages.json`` entry when done, with the key (a hash) of the
settings and input files it depends on. Running the same command again skips finished stages
and resumes the unfinished one (injection from its SQLite store, training from its last
checkpoint). A stage done -- or begun -- with other settings or inputs, or whose outputs were
changed, is never reused: the run stops naming what changed, and ``--force`` redoes that stage
and every later one. One process at a time per run directory (``.lock``).
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from seapo.errors import InputError
from seapo.fingerprint import file_digest, stable_hash
from seapo.io import write_json
from seapo.outputs import OutputSet, folder_lock, unpublish, verify_set
from seapo.pipeline.config import RunConfig, load_run_config
from seapo.progress import console
from seapo.redact import redact, redact_argv
from seapo.train.config import TRAIN_OUTPUTS

PACKAGES = ("seapo", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "lm-eval")


@dataclass
class RunResult:
    """What :func:`run` returns: where the run's outputs are."""

    out: Path
    """The run directory."""
    report: Path
    """Its ``report.md``."""
    stages: dict[str, Any]
    """``stages.json``: each stage's outputs and figures, with the key it was done with."""
    report_html: Path
    """Its ``report.html``: the inspector (:func:`seapo.inspect.inspect_run`), to open in a browser."""


def environment() -> dict[str, Any]:
    """What is needed to repeat a run: versions, Python, platform, git revision."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"packages": versions, "python": sys.version.split()[0], "platform": platform.platform(),
            "git_revision": git_revision(), "command": redact_argv(sys.argv)}


def git_revision(package_dir: Path | None = None) -> str | None:
    """The commit of the seapo checkout this code runs from; None, silently, for an installed copy.

    A copy installed into a virtual environment that sits inside some other repository must not
    record that repository's commit, so the checkout counts only if it holds this very package
    (``src/seapo`` under its top level)."""
    package_dir = (package_dir or Path(__file__).resolve().parents[1]).resolve()
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=package_dir)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or (Path(lines[0]) / "src" / package_dir.name).resolve() != package_dir:
        return None
    return lines[1]


STAGES_FILE = "stages.json"
STARTED_FILE = "stages.started.json"
"""Stages begun and not finished yet, with the key they were begun with (what a resume continues)."""

NOT_IN_KEY: dict[str, set[str]] = {
    "prepare": {"progress", "cache_dir"},
    "profile": {"show_progress", "chunk_size", "ray"},
    "inject": {"show_progress", "chunk_size", "ray"},
    "train": {"output_dir", "resume", "pairing"},
    "eval": {"out", "run_name", "threads", "chunk_size"},
}
"""Settings that do not change a stage's outputs, or that the run sets itself: left out of its key."""


@dataclass
class _Stage:
    name: str
    folder: Path
    """Its output folder: one output set (``seapo.outputs``) per stage."""
    inputs: list[Path]
    """Files of earlier stages it reads (their digests are part of its key)."""
    fn: Callable[[str], dict[str, Any]]
    """Runs it, given its key; returns what stages.json records."""


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _changes(old: dict[str, Any] | None, new: dict[str, Any], *, files: bool = True) -> list[str]:
    """What differs between a stage's recorded inputs and today's, one line each."""
    if not old:
        return ["recorded by an older seapo, without the settings it was done with"]
    missing = object()
    lines = []
    before, now = _flat(old.get("settings", {})), _flat(new.get("settings", {}))
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key, missing), now.get(key, missing)
        if a != b:
            lines.append(f"{key}: {'(unset)' if a is missing else json.dumps(a)} -> "
                         f"{'(unset)' if b is missing else json.dumps(b)}")
    if files:
        for name in sorted(set(old.get("files", {})) | set(new.get("files", {}))):
            a, b = old.get("files", {}).get(name), new.get("files", {}).get(name)
            if a != b:
                lines.append(f"input {name} {'is missing' if b is None else 'changed'}")
    return lines


class _Stages:
    """Bookkeeping of ``stages.json`` (finished stages, each with the key of the settings and
    inputs it was done with) and ``stages.started.json`` (begun, not finished)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out / STAGES_FILE
        self.started_path = out / STARTED_FILE
        self.done: dict[str, Any] = self._load(self.path)
        self.started: dict[str, Any] = self._load(self.started_path)

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"not valid JSON ({exc}); pass --force to redo the run, or choose another --out",
                             path=str(path)) from None
        return data if isinstance(data, dict) else {}

    def save(self) -> None:
        write_json(self.path, self.done)
        write_json(self.started_path, self.started)

    def run(self, stage: _Stage, key: str, inputs: dict[str, Any]) -> dict[str, Any]:
        console.rule(f"[bold]{stage.name}")
        self.started[stage.name] = {"key": key, "inputs": redact(inputs)}
        self.save()
        started = time.time()
        info = stage.fn(key)
        info["wall_time_s"] = round(time.time() - started, 1)
        info["key"], info["inputs"] = key, redact(inputs)
        self.done[stage.name] = info
        self.started.pop(stage.name, None)
        self.save()
        return info


def _models_to_resolve(config: RunConfig, names: set[str]) -> list[tuple[str, str]]:
    """(setting, model) of every model the stages in ``names`` load."""
    models = []
    if "profile" in names and config.profile is not None:
        if getattr(config.profile.policy, "name", None) == "transformers":
            models.append(("profile.policy.model", str(config.profile.policy.model)))
        judge_backend = config.profile.llm.backend
        if config.profile.judge == "llm" and getattr(judge_backend, "name", None) == "transformers":
            models.append(("profile.llm.backend.model", str(judge_backend.model)))
    backend = config.inject.llm.backend
    if "inject" in names and config.inject.injector == "llm" and getattr(backend, "name", None) == "transformers":
        models.append(("inject.llm.backend.model", str(backend.model)))
    if names & {"train", "eval"}:
        models.append(("train.model", str(config.train.model)))
    return models


def resolve_models(config: RunConfig, names: set[str]) -> None:
    """Resolve every model the stages to run will load, before the first starts: a missing model
    fails in seconds (exit 2, naming the setting and the model), not after an hour of injection."""
    from seapo.errors import ModelNotFoundError
    from seapo.models import resolve_model

    for setting, model in _models_to_resolve(config, names):
        try:
            resolve_model(model)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"{setting} = '{model}': {exc}") from None


def run(config: RunConfig | str | Path | None = None, *, out: str | Path | None = None) -> RunResult:
    """Run every stage; ``config`` is a :class:`RunConfig`, a YAML path, or None for the demo.

    One process at a time per run directory. A stage recorded as done is skipped only when the
    settings and inputs it depends on are those it was done with and its outputs are complete and
    unchanged; otherwise the run stops, naming what changed, unless ``config.force`` (``--force``)
    asks to redo that stage and every later one.
    """
    if not isinstance(config, RunConfig):
        config = load_run_config(config)
    if out is not None:
        config = config.updated(out=str(out))
    run_dir = Path(config.out)
    with folder_lock(run_dir, fix=f"wait for it to finish (or stop it), or choose another --out than {run_dir}"):
        return _run(config, run_dir)


def _run(config: RunConfig, run_dir: Path) -> RunResult:
    from seapo.data.prepare import default_rejects_path, prepare
    from seapo.inject.outputs import STAGE as INJECT
    from seapo.inject.pipeline import inject
    from seapo.pipeline.report import write_report
    from seapo.train.trainer import train

    stages = _Stages(run_dir)
    data_dir, inject_dir, train_dir, eval_dir = (run_dir / n for n in ("data", "inject", "train", "eval"))
    records_path = data_dir / "records.jsonl"
    negatives_path = inject_dir / "negatives.jsonl"
    profile_dir = run_dir / "profile"
    profile_path = profile_dir / "profile.json"
    sections = _sections(config, records_path, profile_path)

    def do_prepare(key: str) -> dict[str, Any]:
        output_set = OutputSet(data_dir, "prepare", key, fix=FIX)
        output_set.begin()
        result = prepare(out=records_path, config=config.prepare)
        output_set.commit(p.name for p in (records_path, default_rejects_path(records_path)) if p.exists())
        return {"records": str(result.out), "read": result.read, "kept": result.kept, "rejected": result.rejected,
                "filtered": result.filtered, "duplicates": result.duplicates,
                "duplicate_prompts": result.duplicate_prompts, "format": result.format}

    def do_profile(key: str) -> dict[str, Any]:
        from seapo.profile.run import profile

        result = profile(profile_dir, sections["profile"])  # publishes its own output set
        keep = ("answers", "judged_correct", "unknown", "erroneous", "counts", "distribution", "rates", "intervals",
                "groups", "judge", "data", "data_format", "warnings")
        return {"dir": str(profile_dir), "profile_path": str(profile_path), "chart": str(result.chart_path),
                "profile": {k: result.profile[k] for k in keep}}

    def do_inject(key: str) -> dict[str, Any]:
        result = inject(records_path, inject_dir, sections["inject"])  # publishes its own output set
        return {"dir": str(inject_dir), "summary": result.summary}

    def do_train(key: str) -> dict[str, Any]:
        # negatives.jsonl holds exactly the strategy's plan (mixed: one negative per record), so
        # training uses every negative in it: the plan decides, not a second draw.
        train_config = config.train.updated(output_dir=str(train_dir), pairing="all", resume=True)
        with folder_lock(train_dir):
            output_set = OutputSet(train_dir, "train", key, fix=FIX)
            output_set.begin()
            result = train(negatives_path, train_config)
            output_set.commit(n for n in TRAIN_OUTPUTS if (train_dir / n).exists())
        return result.to_dict()

    def do_eval(key: str) -> dict[str, Any]:
        from seapo.evaluate.compare import compare
        from seapo.evaluate.runner import evaluate

        assert config.eval is not None
        with folder_lock(eval_dir):
            output_set = OutputSet(eval_dir, "eval", key, fix=FIX)
            output_set.begin()
            metrics = {}
            # The trained model is a transformers folder, so both sides generate with transformers: an
            # 'auto' base on llama.cpp would mix the backends' differences into the before/after change.
            pinned = "transformers" if config.eval.generation_backend == "auto" else config.eval.generation_backend
            for label, model in (("base", config.train.model), ("trained", stages.done["train"]["merged_dir"])):
                eval_config = config.eval.updated(out=str(eval_dir), run_name=label, generation_backend=pinned)
                metrics[label] = str(evaluate(model, eval_config).metrics_path)
            comparison = compare(list(metrics.values()), out=eval_dir, verify=False)  # its own set
            output_set.commit(str(Path(p).relative_to(eval_dir)) for p in
                              (*metrics.values(), comparison.table_path, comparison.chart_path)
                              if p is not None and Path(p).exists())
        return {"metrics": metrics, "table": str(comparison.table_path), "chart": str(comparison.chart_path)}

    order = [_Stage("prepare", data_dir, [], do_prepare)]
    if config.profile is not None:
        profile_inputs = [records_path] if config.profile.data is None else []
        order.append(_Stage("profile", profile_dir, profile_inputs, do_profile))
    order += [_Stage(INJECT, inject_dir, [records_path] + ([profile_path] if config.profile is not None else []),
                     do_inject),
              _Stage("train", train_dir, [negatives_path], do_train)]
    if config.eval is not None:
        order.append(_Stage("eval", eval_dir, [], do_eval))

    def inputs_of(stage: _Stage, previous: str | None) -> dict[str, Any]:
        section = sections[stage.name].model_dump(mode="json", exclude=NOT_IN_KEY[stage.name])
        settings = {stage.name: section}
        if stage.name == "eval":
            settings["train"] = {"model": config.train.model}  # the base model it scores
        files = {str(p.relative_to(run_dir)): file_digest(p) if p.is_file() else None for p in stage.inputs}
        if stage.name == "prepare" and Path(str(config.prepare.source)).is_file():
            files[str(config.prepare.source)] = file_digest(config.prepare.source)
        if stage.name == "profile" and config.profile is not None and config.profile.data is not None \
                and Path(config.profile.data).is_file():
            files[config.profile.data] = file_digest(config.profile.data)
        return {"settings": settings, "files": files, "after": previous}

    first = _check(stages, order, inputs_of, run_dir, force=config.force)
    # The check passed: from here on config.yaml describes what is (or will be) on disk.
    (run_dir / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    write_json(run_dir / "environment.json", environment())
    to_run = {s.name for s in order[first:]} if first is not None else set()
    resolve_models(config, to_run)
    if to_run:
        for name in ("report.md", "report.html"):  # they would describe the stages about to change
            (run_dir / name).unlink(missing_ok=True)

    previous: str | None = None
    for stage in order:
        inputs = inputs_of(stage, previous)
        key = stable_hash(inputs)
        if stage.name in to_run:
            stages.run(stage, key, inputs)
        else:
            console.print(f"[dim]stage {stage.name}: already done with these settings, skipped[/]")
        previous = key
    report = write_report(run_dir, config, {s.name: stages.done[s.name] for s in order})
    from seapo.inspect import InspectConfig, inspect_run

    html = inspect_run(run_dir, InspectConfig())  # report.html beside report.md: the browsable run
    console.print(f"[bold green]done[/]: {report}, {html}")
    return RunResult(run_dir, report, stages.done, html)


FIX = "rerun `seapo run` with --force to redo this stage, or choose another --out"


def _sections(config: RunConfig, records_path: Path, profile_path: Path) -> dict[str, Any]:
    """Each stage's config as the run uses it. With a ``profile`` section, profiling reads the run's
    records unless it names its own data, and injection follows the run's profile.json (strategy
    ``profile``, or ``top`` when the inject section says so)."""
    sections: dict[str, Any] = {"prepare": config.prepare, "inject": config.inject, "train": config.train,
                                "eval": config.eval}
    if config.ray is not None:  # --ray: where the stages run, not what they make (left out of their keys)
        sections["inject"] = config.inject.updated({"ray.address": config.ray})
    if config.profile is not None:
        sections["profile"] = config.profile if config.profile.data is not None else \
            config.profile.updated(data=str(records_path), format="records")
        if config.ray is not None:
            sections["profile"] = sections["profile"].updated({"ray.address": config.ray})
        strategy = config.inject.strategy if config.inject.strategy in ("profile", "top") else "profile"
        sections["inject"] = sections["inject"].updated(
            strategy=strategy, strategy_options={**config.inject.strategy_options, "profile": str(profile_path)})
    return sections


def _verify_outputs(stage: _Stage, key: str) -> list[str]:
    try:
        if stage.name in ("inject", "profile"):  # these keep their own settings hash in their manifest
            verify_set(stage.folder, stage=stage.name)
        else:
            verify_set(stage.folder, stage=stage.name, settings=key)
    except InputError as exc:
        return [f"its outputs are not as it left them: {exc}"]
    return []


def _check(stages: _Stages, order: list[_Stage], inputs_of: Callable[[_Stage, str | None], dict[str, Any]],
           run_dir: Path, *, force: bool) -> int | None:
    """Index of the first stage to run (None: all done and unchanged). A stage done or begun with
    other settings or inputs than today's, or whose outputs changed, stops the run with an
    :class:`InputError` listing every change; with ``force`` it and every later stage are redone."""
    first: int | None = None
    problems: dict[str, list[str]] = {}
    previous: str | None = None
    for index, stage in enumerate(order):
        inputs = inputs_of(stage, previous)
        key = stable_hash(inputs)
        previous = key
        record = stages.done.get(stage.name)
        if first is not None:  # redone anyway: only list what changed in its own settings
            if record is not None and (lines := _changes(record.get("inputs"), redact(inputs), files=False)):
                problems[stage.name] = lines
            continue
        if record is not None:
            if record.get("key") == key:
                lines = _verify_outputs(stage, key)
            else:
                lines = _changes(record.get("inputs"), redact(inputs)) or [
                    "a setting not written to stages.json (a secret) or an earlier stage changed"]
            if lines:
                first, problems[stage.name] = index, lines
            continue
        first = index  # the first stage not done: it runs (resuming whatever it had begun)
        begun = stages.started.get(stage.name)
        if begun is not None and begun.get("key") != key:
            lines = _changes(begun.get("inputs"), redact(inputs)) or ["settings not written down (a secret)"]
            problems[stage.name] = ["begun (and interrupted) with other settings or inputs, so resuming would mix "
                                    "the two: " + "; ".join(lines)]
    names = [s.name for s in order]
    dropped = [n for n in stages.done if n not in names]
    for name in dropped:
        problems[name] = ["done in an earlier run but no longer configured"]
    if problems and not force:
        redo = names[first:] if first is not None else []
        listing = "\n".join(f"  {name}: " + "\n    ".join(lines) for name, lines in problems.items())
        raise InputError(
            "this run folder holds stages done with other settings or inputs than the ones given, so continuing "
            f"would mix two runs:\n{listing}\nPass --force to redo "
            + (f"stage '{redo[0]}' and every later one ({', '.join(redo)})" if redo else "the changed stages")
            + ", or choose another --out.", path=str(run_dir))
    if problems:  # --force: forget the changed stage and every later one, and their partial state
        redone = order[first:] if first is not None else []
        for stage in redone:
            stages.done.pop(stage.name, None)
            stages.started.pop(stage.name, None)
            unpublish(stage.folder)
            if stage.name == "train":  # its checkpoints belong to the other settings: never resume them
                shutil.rmtree(stage.folder / "checkpoints", ignore_errors=True)
        for name in dropped:
            stages.done.pop(name, None)
            unpublish(run_dir / name)
        stages.save()
        console.print(f"[yellow]--force: redoing {', '.join(s.name for s in redone) or 'nothing'}[/]")
    return first
