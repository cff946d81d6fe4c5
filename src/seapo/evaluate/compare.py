"""``seapo compare``: several evaluation runs side by side (markdown table + bar chart).

Only like is put next to like: for every task two runs share, the engine, lm-eval's version, the
versions of lm-eval's task YAMLs and seapo's protocol hash (all in ``metrics.json`` under the
task's ``settings``) must be equal, or :func:`compare` refuses with an
:class:`~seapo.errors.InputError` naming the task, the setting and both runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seapo.errors import InputError
from seapo.outputs import is_set_folder, verify_set

DIMENSION_ORDER = ["truthfulness", "knowledge", "math", "reasoning", "code"]

COMPARABLE = {"engine": "engine", "lm_eval_version": "lm-eval version", "task_versions": "lm-eval task versions",
              "protocol_hash": "task protocol (protocol_hash)",
              "generation_backend": "generation backend"}
"""Task settings that must agree for two runs' scores of a task to be comparable (the generation backend too:
llama.cpp on a GGUF file and transformers on its dequantized copy give different greedy outputs)."""


@dataclass
class CompareResult:
    """What :func:`compare` returns."""

    columns: list[str]
    """Column label of each run (model name, made unique)."""
    rows: list[dict[str, Any]]
    """One per task metric and per dimension: ``label``, ``kind`` ("task"/"dimension"),
    ``dimension`` and ``values`` (score x100 per column, None where a run lacks it)."""
    markdown: str
    """The table, deltas against the first column."""
    table_path: Path | None = None
    chart_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    """Subset / skipped-task remarks per run."""


def load_metrics(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """Read ``metrics.json`` from a file, a run folder that holds one, or a ``seapo eval --out``
    folder holding exactly one run. ``verify``: when the run folder or the folder above it holds
    a seapo output set (``seapo run``'s ``eval/``), refuse it unless it is complete and unchanged."""
    path = Path(path)
    if path.is_dir():
        own = path / "metrics.json"
        runs = [own] if own.is_file() else sorted(path.glob("*/metrics.json"))
        if len(runs) > 1:
            raise InputError(f"several runs here ({', '.join(r.parent.name for r in runs)}): name the run folders",
                             path=str(path))
        path = runs[0] if runs else own
    if not path.is_file():
        raise InputError("no metrics.json here (give a metrics.json or a `seapo eval` run folder)", path=str(path))
    if verify:
        for folder in (path.parent, path.parent.parent):
            if is_set_folder(folder):
                verify_set(folder, fix="rerun the `seapo run` (or `seapo eval`) that wrote it")
                break
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=str(path), line=exc.lineno) from exc
    for key in ("model", "tasks"):
        if key not in data:
            raise InputError("not a seapo metrics file", path=str(path), field=key)
    data["_path"] = str(path)
    return data


def _label(run: dict[str, Any], taken: set[str]) -> str:
    # The run folder's name (``--run-name``, default derived from --model) is short and unique
    # per output folder; the model's name is the fallback for a loose metrics.json.
    folder = Path(run["_path"]).parent.name
    base = folder if folder and folder != "." else (run["model"].get("name") or run["model"].get("spec"))
    label, k = base, 2
    while label in taken:
        label, k = f"{base} ({k})", k + 1
    taken.add(label)
    return label


def compare(paths: list[str | Path], out: str | Path | None = None, *, verify: bool = True) -> CompareResult:
    """Compare runs; with ``out`` (a folder) write ``comparison.md`` and ``comparison.png`` there.
    ``verify``: see :func:`load_metrics` (``seapo run`` turns it off for the set it is writing)."""
    if not paths:
        raise InputError("give at least one run folder or metrics.json", field="paths")
    runs = [load_metrics(p, verify=verify) for p in paths]
    taken: set[str] = set()
    columns = [_label(r, taken) for r in runs]
    check_comparable(runs, columns)

    metric_rows: dict[tuple[str, str], dict[str, Any]] = {}
    dims_seen: set[str] = set()
    for col, run in enumerate(runs):
        for task, res in run["tasks"].items():
            dims_seen.add(res["dimension"])
            for metric, value in res["metrics"].items():
                row = metric_rows.setdefault((task, metric), {
                    "label": f"{task} {metric}", "kind": "task", "dimension": res["dimension"],
                    "values": [None] * len(runs), "n": [None] * len(runs)})
                row["values"][col] = 100.0 * value
                row["n"][col] = res["n"]
        dims_seen.update(run.get("dimensions", {}))
    dims = [d for d in DIMENSION_ORDER if d in dims_seen] + sorted(dims_seen - set(DIMENSION_ORDER))
    rows: list[dict[str, Any]] = []
    for dim in dims:
        rows.append({"label": f"**{dim}**", "kind": "dimension", "dimension": dim,
                     "values": [100.0 * r["dimensions"][dim] if dim in r.get("dimensions", {}) else None
                                for r in runs]})
        rows += [row for (task, _), row in sorted(metric_rows.items()) if row["dimension"] == dim]

    notes = []
    for label, run in zip(columns, runs, strict=True):
        subset = [f"{t} (n={r['n']} of {r['n_available']})" for t, r in run["tasks"].items() if r.get("subset")]
        if subset:
            notes.append(f"{label}: subset evaluation -- {', '.join(subset)}")
        for task, why in run.get("skipped", {}).items():
            notes.append(f"{label}: {task} skipped -- {why}")

    notes += numerics_notes(runs, columns)
    markdown = _markdown(columns, rows, notes)
    result = CompareResult(columns, rows, markdown, notes=notes)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        result.table_path = out / "comparison.md"
        result.table_path.write_text(markdown, encoding="utf-8")
        result.chart_path = out / "comparison.png"
        _chart(columns, rows, result.chart_path)
    return result


def check_comparable(runs: list[dict[str, Any]], columns: list[str]) -> None:
    """Raise an :class:`InputError` if a task's engine, lm-eval version or task version differs between runs."""
    first: dict[str, tuple[str, dict[str, Any]]] = {}
    for label, run in zip(columns, runs, strict=True):
        for task, res in run["tasks"].items():
            settings = res.get("settings") or {}
            if task not in first:
                first[task] = (label, settings)
                continue
            base_label, base = first[task]
            for key, what in COMPARABLE.items():
                if base.get(key) != settings.get(key):
                    raise InputError(f"cannot compare task '{task}': its {what} differs -- run '{base_label}' "
                                     f"has {_shown(base, key)}, run '{label}' has {_shown(settings, key)}; evaluate "
                                     f"both with the same seapo and lm-eval set-up", path=run["_path"], field=key)


def numerics_notes(runs: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """A note when the runs were computed in different dtypes or, in bf16/fp16, at different batch sizes:
    low-precision scores move with how items are batched (padding, kernel choice; docs/benchmarks.md
    measured BBH at 12/81 at batch 16 and 8/81 at batch 32), so such a difference is not the models'."""
    def numerics(run: dict[str, Any]) -> tuple[Any, Any]:
        backend = (run.get("config") or {}).get("backend") or {}
        return (run.get("model") or {}).get("dtype") or backend.get("dtype"), backend.get("batch_size")

    seen = [numerics(r) for r in runs]
    dtypes = {d for d, _ in seen}
    low = any(str(d) in ("bfloat16", "bf16", "float16", "fp16") for d in dtypes)
    if len(dtypes) <= 1 and (not low or len({b for _, b in seen}) <= 1):
        return []
    shown = ", ".join(f"{c}: {d}, batch {b}" for c, (d, b) in zip(columns, seen, strict=True))
    return [f"computed with different numerics ({shown}): low-precision scores move with dtype and batch size, "
            "so part of a difference may be the set-up's; evaluate every run with the same dtype and batch size"]


def _shown(settings: dict[str, Any], key: str) -> str:
    return repr(settings[key]) if key in settings else "none recorded (written by an older seapo)"


def format_score(value: float | None, base: float | None, first: bool) -> str:
    """One cell of the comparison table: a score x100 to one decimal, and after the first column its
    change against the first run's score (``61.5 (+2.0)``); ``--`` where the run lacks the metric.
    ``comparison.md`` and the inspector's table (``seapo inspect``) both use it, so they agree."""
    if value is None:
        return "--"
    if first or base is None:
        return f"{value:.1f}"
    return f"{value:.1f} ({value - base:+.1f})"


def score_cells(row: dict[str, Any]) -> list[str]:
    """The formatted cells of one :attr:`CompareResult.rows` entry, one per run (:func:`format_score`)."""
    base = row["values"][0]
    return [format_score(v, base, i == 0) for i, v in enumerate(row["values"])]


def column_headers(columns: list[str]) -> list[str]:
    """The table's run headers: the first run's label, then each other's with ``(Δ vs first)``."""
    return [c if i == 0 else f"{c} (Δ vs first)" for i, c in enumerate(columns)]


def _markdown(columns: list[str], rows: list[dict[str, Any]], notes: list[str]) -> str:
    head = "| task / dimension | " + " | ".join(column_headers(columns)) + " |"
    lines = [head, "| --- |" + " ---: |" * len(columns)]
    for row in rows:
        cells = score_cells(row)
        label = row["label"] if row["kind"] == "dimension" else f"&nbsp;&nbsp;{row['label']}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "Scores x100; deltas against the first column.\n\n" + "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return text


def _chart(columns: list[str], rows: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars: one group per dimension, then its tasks; one bar per run."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    labels = [r["label"].strip("*") for r in rows]
    width = 0.8 / max(1, len(columns))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) * max(1, len(columns)) ** 0.5), 4.5))
    for k, col in enumerate(columns):
        xs = [i + (k - (len(columns) - 1) / 2) * width for i in range(len(rows))]
        ys = [r["values"][k] if r["values"][k] is not None else 0.0 for r in rows]
        ax.bar(xs, ys, width, label=col)
    for i, row in enumerate(rows):  # shade dimension summaries so groups are visible
        if row["kind"] == "dimension":
            ax.axvspan(i - 0.5, i + 0.5, color="0.92", zorder=0)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("score (x100)")
    ax.set_title("seapo evaluation by dimension")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
