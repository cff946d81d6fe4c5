"""``report.md`` of a ``seapo run``: config, data, error profile, injection, training, held-out accuracy, timings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from seapo.io import atomic_open
from seapo.pipeline.config import RunConfig


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _heldout_table(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    from seapo.train.heldout import HELDOUT_COLUMNS, effect_verdict, heldout_rows

    if not before:
        return ["No held-out pairs (held-out fraction 0 or too few records)."]
    lines = ["Positive scored above negative, 95% bootstrap CI over records in brackets. Divergent span: mean "
             "per-token log-likelihood from the first differing token; implicit reward: policy-vs-reference "
             "log-ratio (0.5 by construction before training); summed log-likelihood follows length.", "",
             "| " + " | ".join(HELDOUT_COLUMNS) + " |", "| --- |" + " ---: |" * (len(HELDOUT_COLUMNS) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in heldout_rows(before, after)]
    verdict = effect_verdict(after)
    if verdict:
        lines += ["", f"**{verdict}**"]
    return lines


def _interval(entry: dict[str, Any], value: str) -> str:
    from seapo.profile.stats import format_interval

    return format_interval(entry.get(value), entry.get("low"), entry.get("high"))


def _profile_section(prof: dict[str, Any], run_dir: Path, inject: dict[str, Any] | None) -> list[str]:
    """The policy's measured error distribution with its intervals, and the mix injection planned from it."""
    p = prof["profile"]
    plan = (inject or {}).get("summary", {}).get("plan", {})
    lines = ["## Error profile of the policy", "",
             f"Judge `{p['judge']['name']}` on {p['answers']} answers ({p['data_format']} `{p['data']}`): "
             f"{p['judged_correct']} judged correct, {p['erroneous']} erroneous, {p['unknown']} unknown.", "",
             f"Intervals ({int(100 * p['intervals']['confidence'])}%): share -- {p['intervals']['distribution']}; "
             f"rate -- {p['intervals']['rates']}.", "",
             "| error type | answers with it | share [95% CI] | rate [95% CI] | target mix | planned mix |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for et, d in p["distribution"].items():
        lines.append(f"| {et} | {p['counts'][et]} | {_interval(d, 'share')} | {_interval(p['rates'][et], 'rate')} | "
                     f"{_fmt(plan.get('target', {}).get(et))} | {_fmt(plan.get('realised', {}).get(et))} |")
    for warning in p.get("warnings") or []:
        lines += ["", f"Warning: {warning}."]
    if prof.get("chart"):
        lines += ["", f"![error profile]({os.path.relpath(prof['chart'], run_dir)})"]
    return lines


def write_report(run_dir: Path, config: RunConfig, stages: dict[str, Any]) -> Path:
    lines = ["# SeaPO run report", ""]
    lines += ["## Wall time per stage", "", "| stage | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {info.get('wall_time_s')} |" for name, info in stages.items()]
    if prep := stages.get("prepare"):
        lines += ["", "## Data", "",
                  f"Source `{config.prepare.source}` (layout `{prep['format']}`): read {prep['read']}, "
                  f"kept {prep['kept']}, rejected {prep['rejected']}, filtered {prep['filtered']}, "
                  f"duplicates {prep['duplicates']}, prompts with several responses {prep['duplicate_prompts']}."]
    if prof := stages.get("profile"):
        lines += ["", *_profile_section(prof, run_dir, stages.get("inject"))]
    inj = stages.get("inject")
    if inj and inj["summary"].get("strategy") == "source":
        summary = inj["summary"]
        lines += ["", "## Negatives: the source's own rejected responses", "",
                  f"No injection (`negatives: source`, the vanilla baseline): {summary['pairs']} pairs of each "
                  f"record's chosen and rejected response from {summary['records']} records; "
                  f"{summary['rejected_items']} records had none usable (inject/rejected.jsonl)."]
        if audit := summary.get("shortcut_audit"):
            from seapo.audit.render import markdown

            lines += ["", "### Shortcut audit", "", "Method: " + audit["method"] + ".", "", *markdown(audit)]
    elif inj:
        summary = inj["summary"]
        lines += ["", "## Injection", "",
                  f"Injector `{summary['injector_fingerprint']}`, fallback `{summary['fallback']}`, "
                  f"strategy `{summary['strategy']}`: {summary['pairs']} pairs from {summary['records']} records "
                  f"({summary['negatives']} accepted negatives, {summary['rejected_items']} items rejected). "
                  f"Judge `{summary.get('judge', 'none')}`: a negative is kept only when it finds the named error "
                  "(agreement: the share of judged attempts in which it found the injector's label).", "",
                  "| error type | attempted | accepted | fallen back | rejected | rejected by the judge "
                  "| judge agreement | mean difference |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for et, c in summary["per_type"].items():
            lines.append(f"| {et} | {c['attempted']} | {c['accepted']} | {c['fallen_back']} | {c['rejected']} | "
                         f"{c.get('judge_rejected', '–')} | {_fmt(c.get('judge_agreement'))} | "
                         f"{_fmt(c['mean_difference'])} |")
        if audit := summary.get("shortcut_audit"):
            from seapo.audit.render import markdown

            lines += ["", "### Shortcut audit", "",
                      "How often a word n-gram classifier, trained on other records' pairs, scores a negative above "
                      "its own positive (0.5: no surface cue; docs/audit.md). Method: " + audit["method"] + ".", ""]
            lines += markdown(audit)
    if tr := stages.get("train"):
        settings = tr.get("settings", {})
        lines += ["", "## Training", "",
                  f"`{config.train.algo}` on `{config.train.model}`: {tr['train_pairs']} training pairs, "
                  f"{tr['global_step']} optimizer steps in {_fmt(tr['train_time_s'], 1)} s."]
        chosen = {k: settings[k] for k in ("dtype", "gradient_checkpointing", "per_device_batch_size",
                                          "gradient_accumulation_steps", "precompute_ref_log_probs")
                  if k in settings}
        if chosen:
            lines += ["", "Settings chosen: " + ", ".join(f"{k} = `{v}`" for k, v in chosen.items()) + "."]
        if tr.get("plot_path"):
            lines += ["", f"![training curve]({os.path.relpath(tr['plot_path'], run_dir)})"]
        if tr.get("merged_dir"):
            lines += ["", f"Merged model: `{tr['merged_dir']}`; adapter: `{tr.get('adapter_dir')}`."]
        lines += ["", "## Held-out preference accuracy", "",
                  "How often the model gives the positive a higher log-likelihood than its injected negative, "
                  "on records kept out of training.", ""]
        lines += _heldout_table(tr.get("heldout_before"), tr.get("heldout_after"))
    if ev := stages.get("eval"):
        table = Path(ev["table"]).read_text(encoding="utf-8") if Path(ev["table"]).is_file() else ""
        lines += ["", "## Evaluation: base vs trained", "", table,
                  f"![evaluation]({os.path.relpath(ev['chart'], run_dir)})"]
    lines += ["", "## Resolved config", "", "```yaml", config.to_yaml().rstrip(), "```",
              "", "Package versions, seeds and git revision: `environment.json`; config: `config.yaml`.", ""]
    path = run_dir / "report.md"
    with atomic_open(path) as f:
        f.write("\n".join(lines))
    return path
