"""Rebuild the small reproduction's tables and chart from the committed figures in ``results/``.

    python experiments/small_repro/table.py [RESULTS] [OUT.md]

Reads ``results/<condition>/eval-<group>.json`` (``seapo eval``'s metrics.json) and ``run.json`` (the
run's held-out figures, injection summary and wall times, copied by ``run.py --stage conditions``), and
writes the markdown tables (conditions x metrics; seeds as mean and spread; deltas against base and
against vanilla beside the seed noise) and a bar chart. Nothing here computes a result: it only
arranges what seapo wrote.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = re.compile(r"-s(\d+)$")
ORDER = ["base", "vanilla-kto", "seapo-kto-mixed", "seapo-kto-correctness", "seapo-kto-logic",
         "seapo-kto-hallucination", "seapo-kto-profile", "seapo-dpo-mixed", "vanilla-dpo",
         "seapo-kto-mixed-divergent", "seapo-kto-mixed-paper-lr"]
TYPES = ["correctness", "logic", "hallucination", "source"]


def load(results: Path) -> dict[str, list[dict[str, Any]]]:
    """Condition -> one entry per seed: {"name", "scores": {column: x100}, "run": run.json or None}."""
    out: dict[str, list[dict[str, Any]]] = {}
    for folder in sorted(p for p in results.iterdir() if p.is_dir() and any(p.glob("eval-*.json"))):
        scores: dict[str, float] = {}
        for path in sorted(folder.glob("eval-*.json")):
            metrics = json.loads(path.read_text(encoding="utf-8"))
            for task, res in metrics["tasks"].items():
                for metric, value in res["metrics"].items():
                    scores[f"{task} {metric}"] = 100.0 * value
                    scores[f"{task} n"] = res["n"]
        run = folder / "run.json"
        entry = {"name": folder.name, "scores": scores,
                 "run": json.loads(run.read_text(encoding="utf-8")) if run.is_file() else None}
        out.setdefault(SEED.sub("", folder.name), []).append(entry)
    return dict(sorted(out.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER)))


def _stats(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def cell(values: list[float]) -> str:
    if not values:
        return "--"
    mean, sd = _stats(values)
    return f"{mean:.1f}" if sd is None else f"{mean:.1f} ± {sd:.1f}"


def delta(values: list[float], against: list[float]) -> str:
    if not values or not against:
        return "--"
    return f"{statistics.fmean(values) - statistics.fmean(against):+.1f}"


def benchmark_table(data: dict[str, list[dict[str, Any]]]) -> list[str]:
    columns = sorted({c for runs in data.values() for r in runs for c in r["scores"] if not c.endswith(" n")})
    lines = ["| condition | seeds | " + " | ".join(columns) + " |", "| --- | ---: |" + " ---: |" * len(columns)]
    for name, runs in data.items():
        row = [cell([r["scores"][c] for r in runs if c in r["scores"]]) for c in columns]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(row) + " |")
    lines += ["", "Deltas (mean over seeds) against base, and against vanilla with the same loss; the seed spread "
              "(standard deviation) of the conditions run with 3 seeds is the noise to read them against.", "",
              "| condition | " + " | ".join(f"{c} Δ base / Δ vanilla" for c in columns) + " |",
              "| --- |" + " ---: |" * len(columns)]
    base = data.get("base", [])
    for name, runs in data.items():
        if name == "base":
            continue
        vanilla = data.get("vanilla-dpo" if "-dpo-" in name or name.endswith("-dpo") else "vanilla-kto", [])
        cells = []
        for c in columns:
            mine = [r["scores"][c] for r in runs if c in r["scores"]]
            b = [r["scores"][c] for r in base if c in r["scores"]]
            v = [r["scores"][c] for r in vanilla if c in r["scores"]] if not name.startswith("vanilla") else []
            cells.append(f"{delta(mine, b)} / {delta(mine, v)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _acc(block: dict[str, Any] | None, metric: str) -> str:
    if not block or not block.get(metric) or block[metric].get("accuracy") is None:
        return "--"
    m = block[metric]
    lo, hi = m["accuracy_ci"] if m.get("accuracy_ci") else (None, None)
    return f"{m['accuracy']:.3f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None else "")


def heldout_table(data: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = ["| condition (seed) | " + " | ".join(f"{t}: reward acc / span acc" for t in TYPES) + " |",
             "| --- |" + " ---: |" * len(TYPES)]
    for runs in data.values():
        for r in runs:
            if not r["run"]:
                continue
            after = r["run"]["heldout_after"]["per_error_type"]
            cells = [f"{_acc(after.get(t), 'implicit_reward')} / {_acc(after.get(t), 'divergent_span')}"
                     for t in TYPES]
            lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return lines


def audit_table(data: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = ["| condition (seed) | type | pairs | shortcut accuracy [95% CI] | negative longer |",
             "| --- | --- | ---: | ---: | ---: |"]
    for runs in data.values():
        r = runs[0]
        audit = (r["run"] or {}).get("inject", {}).get("shortcut_audit") or {}
        for t, a in (audit.get("per_type") or {}).items():
            acc, ci = a.get("accuracy"), a.get("interval") or [None, None]
            shown = "--" if acc is None else f"{acc:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci[0] is not None
                                                              else "")
            longer = (a.get("length") or {}).get("negative_longer")
            lines.append(f"| {r['name']} | {t} | {a.get('pairs', '--')} | {shown} | "
                         f"{'--' if longer is None else f'{longer:.0%}'} |")
    return lines


def tune_table(results: Path) -> list[str]:
    """The learning-rate x steps grid of ``seapo tune`` (results/tune.json): each point's validation
    implicit-reward accuracy before and after training, and the choice every condition took."""
    path = results / "tune.json"
    if not path.is_file():
        return ["Not run yet (`run.py --stage tune`)."]
    tune = json.loads(path.read_text(encoding="utf-8"))
    metric = tune["metric"]
    lines = [f"| point | fit pairs | steps | validation {metric} acc before | after [95% CI] | train time (s) |",
             "| --- | ---: | ---: | ---: | --- | ---: |"]
    for p in tune["points"]:
        label = _settings(p["settings"])
        before, after = (p["validation"][k].get(metric) or {} for k in ("before", "after"))
        ci = after.get("accuracy_ci")
        lines.append(f"| {label} | {p['fit_pairs']} | {p['global_step']} | {_pct(before.get('accuracy'))} | "
                     f"{_pct(after.get('accuracy'))}" + (f" [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else "")
                     + f" | {p['train_time_s']:.0f} |")
    choice = tune.get("choice")
    if choice:
        apart = "" if choice["separated"] else (
            "; not separated (95% CI of the paired accuracy difference includes 0) from: "
            + "; ".join(_settings(s) for s in choice["not_separated"]))
        lines += ["", f"Chosen: **{_settings(choice['settings'])}** on {choice['validation_pairs']} validation "
                      f"pairs{apart}."]
    return lines


def _settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in settings.items())


def _pct(value: float | None) -> str:
    return "--" if value is None else f"{100 * value:.1f}"


def times_table(data: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = ["| run | train pairs | steps | wall time per stage (s) |", "| --- | ---: | ---: | --- |"]
    for runs in data.values():
        for r in runs:
            if r["run"]:
                t = r["run"]["train"]
                walls = ", ".join(f"{k} {v}" for k, v in r["run"]["wall_time_s"].items())
                lines.append(f"| {r['name']} | {t['train_pairs']} | {t['global_step']} | {walls} |")
    return lines


def chart(data: dict[str, list[dict[str, Any]]], path: Path, columns: tuple[str, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(data)
    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 4.5), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        for i, n in enumerate(names):
            values = [r["scores"][column] for r in data[n] if column in r["scores"]]
            if not values:
                continue
            mean, sd = _stats(values)
            # One seed has no spread to show: a zero-height error bar would read as "no noise".
            ax.bar(i, mean, yerr=sd, capsize=3, color="#4c72b0")
            ax.plot([i] * len(values), values, "o", color="black", markersize=3)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_title(column)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_table(results: Path, out: Path) -> Path:
    """Write the generated part of the results page (between its markers, keeping the hand-written text)."""
    data = load(results)
    body = ["## Learning rate and steps (seapo tune, SeaPO mixed KTO, validation split of the train records)", "",
            *tune_table(results), "",
            "## Benchmarks (x100)", "", *benchmark_table(data), "",
            "## Held-out preference accuracy after training", "",
            "Implicit-reward accuracy (policy-vs-reference log-ratio of the positive above the negative's) and "
            "divergent-span accuracy (mean per-token log-likelihood from the first differing token), with 95% "
            "bootstrap intervals over records, on the same held-out records for every condition; `source` is "
            "UltraFeedback's own chosen vs rejected (transfer to real preferences).", "", *heldout_table(data), "",
            "## Shortcut audit of the training negatives", "", *audit_table(data), "",
            "## Sizes and wall times", "", *times_table(data), ""]
    columns = tuple(c for c in ("truthfulqa_mc mc2", "mmlu acc")
                    if any(c in r["scores"] for runs in data.values() for r in runs))
    if columns:
        chart(data, out.with_suffix(".png"), columns)
        body += [f"![conditions]({out.with_suffix('.png').name})", "",
                 "Bars: the mean over seeds; dots: each seed; error bars: the seed standard deviation, drawn "
                 "only where a condition has more than one seed.", ""]
    begin, end = "<!-- table.py: begin -->", "<!-- table.py: end -->"
    text = out.read_text(encoding="utf-8") if out.is_file() else f"# Small reproduction\n\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(head + begin + "\n" + "\n".join(body) + "\n" + end + tail, encoding="utf-8")
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    write_table(Path(args[0]) if args else HERE / "results",
                Path(args[1]) if len(args) > 1 else HERE.parents[1] / "docs" / "results" / "small_repro.md")
