"""``seapo profile``: generated from :class:`~seapo.profile.config.ProfileConfig`."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import typer

from seapo.config.cli import config_command
from seapo.profile.config import ProfileConfig
from seapo.progress import console

PARAMS = [
    inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=Path,
                      default=typer.Option(..., "--out", "-o", help="Folder for profile.json, verdicts.jsonl, "
                                                                    "profile.png and the resume store.",
                                           show_default=False)),
]
ALIASES = {
    "policy.model": ["--model", "-m"],
    "policy.name": ["--backend"],
    "policy.batch_size": ["--batch-size", "-b"],
    "data": ["--data", "-d"],
    "llm.backend.model": ["--judge-model"],
    "ray.address": ["--ray"],  # Ray Data (docs/ray.md)
    **{f"ray.{key}": [f"--ray-{key.replace('_', '-')}"] for key in ("workers", "cpus_per_worker", "gpus_per_worker")},
}


def run_profile(config: ProfileConfig, out: Path) -> None:
    from seapo.profile.run import profile

    result = profile(out, config)
    p = result.profile
    console.print(f"{p['answers']} answers: {p['judged_correct']} judged correct, {p['erroneous']} erroneous, "
                  f"{p['unknown']} unknown (judge {p['judge']['name']})", highlight=False)
    for et, d in p["distribution"].items():
        share = "–" if d["share"] is None else f"{d['share']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"
        console.print(f"[bold]{et:>13}[/]: {p['counts'][et]:>5}  share {share}", highlight=False)
    typer.echo(json.dumps({"profile": str(result.profile_path), "verdicts": str(result.verdicts_path),
                           "chart": str(result.chart_path)}))


profile_command = config_command(
    ProfileConfig, run_profile, params=PARAMS, aliases=ALIASES,
    doc="The policy's own error distribution: it answers each prompt, a judge labels each answer against the "
        "reference; writes profile.json (counts, distribution with 95% intervals, per source/category), "
        "verdicts.jsonl and profile.png (resumable).\n\nFeed profile.json to `seapo inject --strategy profile "
        "--profile DIR/profile.json`. Exit codes: 0 done, 2 bad input.")


def register(app: typer.Typer) -> None:
    app.command("profile")(profile_command)
