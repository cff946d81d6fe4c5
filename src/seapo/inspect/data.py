"""What the inspector shows, computed here (the page only renders it): every pair and rejected item with
its word diff, the input rejects, and the run's figures (summary, profile, training, held-out, evaluation)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from difflib import SequenceMatcher
from itertools import accumulate
from pathlib import Path
from typing import Any

from seapo.inspect.config import InspectConfig
from seapo.io import iter_jsonl

TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
"""Diff units: words, single punctuation marks and runs of white space (kept, so the edits are exact)."""
EDIT_BINS = [1, 2, 3, 5, 9, 17, 33, 65]
"""Lower bounds of the edit-size histogram's bins (changed tokens): 1, 2, 3-4, 5-8, ..., 65+."""
DIFF_BINS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
"""Lower bounds of the difference histogram's bins."""


def word_edits(a: str, b: str) -> list[list[Any]]:
    """``[[start, end, replacement], ...]`` in ``a``'s characters, in order, such that applying them to
    ``a`` gives exactly ``b`` (:func:`apply_edits`); found by difflib on word tokens of the part between
    the common beginning and end (cut at white space, so the tokens there are those of the whole text)."""
    lo = _common(a, b)
    while lo > 0 and not a[lo - 1].isspace():
        lo -= 1
    while lo > 0 and a[lo - 1].isspace():
        lo -= 1
    tail = min(_common(a[::-1], b[::-1]), len(a) - lo, len(b) - lo)
    hi_a = len(a) - tail
    while hi_a < len(a) and not a[hi_a].isspace():
        hi_a += 1
    while hi_a < len(a) and a[hi_a].isspace():
        hi_a += 1
    hi_b = hi_a + len(b) - len(a)
    ta, tb = TOKEN.findall(a[lo:hi_a]), TOKEN.findall(b[lo:hi_b])
    offsets_a = list(accumulate(map(len, ta), initial=lo))
    offsets_b = list(accumulate(map(len, tb), initial=lo))
    matcher = SequenceMatcher(None, ta, tb, autojunk=False)
    return _whole_words(a, [[offsets_a[i1], offsets_a[i2], b[offsets_b[j1]:offsets_b[j2]]]
                            for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"])


def _common(a: str, b: str) -> int:
    """Length of the common beginning of two strings (binary search over slice comparisons, done in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _word_char(text: str, i: int, step: int) -> bool:
    """Part of a number or a Latin word: ASCII letters and digits, and '.' or ',' inside a number."""
    c = text[i]
    if c.isascii() and c.isalnum():
        return True
    j = i + step
    return c in ".," and 0 <= j < len(text) and text[j].isdigit()


def _whole_words(a: str, edits: list[list[Any]]) -> list[list[Any]]:
    """Grow each edit to the whole word or number it cuts into ('6.2' -> '6.5' is one edit, not '2' -> '5'),
    and join edits only white space apart ('a variety of' -> '30' is one edit): the text around an edit
    is the same on both sides, so it grows by the same characters on both."""
    out: list[list[Any]] = []
    for k, (start, end, rep) in enumerate(edits):
        lo = out[-1][1] if out else 0
        hi = edits[k + 1][0] if k + 1 < len(edits) else len(a)
        old = a[start:end]
        if (old[:1] or rep[:1]).isalnum():
            while start > lo and _word_char(a, start - 1, -1):
                start, rep = start - 1, a[start - 1] + rep
        if (old[-1:] or rep[-1:]).isalnum():
            while end < hi and _word_char(a, end, 1):
                end, rep = end + 1, rep + a[end]
        if out and not a[out[-1][1]:start].strip():  # only white space from the previous edit: one edit
            out[-1][2] += a[out[-1][1]:start] + rep
            out[-1][1] = end
        else:
            out.append([start, end, rep])
    for edit in out:  # white space both sides share at an edit's ends is no part of it
        start, end, rep = edit
        while end > start and rep and a[end - 1] == rep[-1] and rep[-1].isspace():
            end, rep = end - 1, rep[:-1]
        while end > start and rep and a[start] == rep[0] and rep[0].isspace():
            start, rep = start + 1, rep[1:]
        edit[:] = [start, end, rep]
    return out


def apply_edits(a: str, edits: list[list[Any]]) -> str:
    """The text :func:`word_edits` describes (what the page shows as the negative)."""
    parts, at = [], 0
    for start, end, replacement in edits:
        parts += [a[at:start], replacement]
        at = end
    return "".join(parts) + a[at:]


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a run's JSONL file, none when it is absent (a bad line: InputError naming file and line)."""
    if path.is_file():
        for _, row in iter_jsonl(path):
            yield row


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _content(value: Any) -> str:
    return value.get("content", "") if isinstance(value, dict) else str(value or "")


def _bin(value: float, bounds: list[float]) -> int:
    return max(i for i, b in enumerate(bounds) if value >= b) if value >= bounds[0] else 0


def _stored_attempts(inject_dir: Path, settings: str | None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every item's attempts from the resume store (pairs.jsonl keeps only their count), read-only."""
    path = inject_dir / "injections.sqlite"
    if not path.is_file() or not settings:
        return {}
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)  # writes nothing beside it
    try:
        rows = con.execute("SELECT record_id, error_type, attempts FROM items WHERE settings = ? AND accepted = 1",
                           (settings,)).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        con.close()
    return {(r, t): json.loads(a) for r, t, a in rows}


class _Builder:
    def __init__(self, config: InspectConfig) -> None:
        self.cut = config.max_text_chars
        self.items: list[dict[str, Any]] = []

    def text(self, value: str) -> str:
        return value if len(value) <= self.cut else value[:self.cut]

    def item(self, *, prompt: Any, positive: str, negative: str | None, **fields: Any) -> dict[str, Any]:
        edits = word_edits(positive, negative) if negative is not None else None
        cut = len(positive) > self.cut or (negative is not None and len(negative) > self.cut)
        if edits is not None and cut:
            edits = [e for e in edits if e[1] <= self.cut]
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt or "")}]
        row = {**fields, "prompt": [[m.get("role", ""), self.text(_content(m))] for m in messages],
               "pos": self.text(positive), "edits": edits, "cut": cut,
               "words": sum(1 for e in edits or () if (e[2].strip() or positive[e[0]:e[1]].strip()))}
        self.items.append(row)
        return row

    def attempt(self, a: dict[str, Any]) -> dict[str, Any]:
        judge = a.get("judge") or {}
        return {"injector": a.get("injector"), "reason": a.get("reason"), "difference": a.get("difference"),
                "changed_tokens": a.get("changed_tokens"), "error": a.get("error"),
                "judge": judge.get("findings"), "rationale": judge.get("rationale"),
                "text": self.text(a["text"]) if a.get("text") else None}


def _finding(judge: dict[str, Any] | None, error_type: str) -> str:
    return (judge or {}).get("findings", {}).get(error_type, "none") if judge else "none"


def find_inject_dir(run_dir: Path) -> Path | None:
    """``RUN_DIR/inject`` of a ``seapo run``, or RUN_DIR itself when it is a ``seapo inject --out`` folder."""
    for folder in (run_dir / "inject", run_dir):
        if (folder / "summary.json").is_file() or (folder / "pairs.jsonl").is_file():
            return folder
    return None


def collect(run_dir: Path, config: InspectConfig) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready dict."""
    inject_dir = find_inject_dir(run_dir)
    stages = _json(run_dir / "stages.json") or {}
    summary = (_json(inject_dir / "summary.json") if inject_dir else None) or {}
    train_dir = run_dir / "train"
    heldout = _json(train_dir / "heldout.json") or {}
    margins: dict[str, dict[str, Any]] = {}
    for side in ("before", "after"):
        for d in (heldout.get(side) or {}).get("details") or []:
            m = margins.setdefault(d["id"], {})
            m[side] = d.get("divergent_span_margin")
            if side == "after":
                m["reward"] = d.get("implicit_reward_margin")

    build = _Builder(config)
    stored = _stored_attempts(inject_dir, summary.get("settings_key")) if inject_dir else {}
    for p in _jsonl(inject_dir / "pairs.jsonl") if inject_dir else ():
        details = p.get("details") or {}
        failed = [build.attempt(a) for a in stored.get((p["record_id"], p["error_type"]), []) if not a.get("passed")]
        build.item(id=p["id"], record=p["record_id"], type=p["error_type"],
                   status="fallen_back" if p.get("fallback") else "accepted", injector=p.get("injector"),
                   perturbations=details.get("perturbations") or ([details["perturbation"]]
                                                                  if details.get("perturbation") else []),
                   difference=p.get("difference"), changed_tokens=p.get("changed_tokens"),
                   attempts=p.get("attempts"), judge=_finding(p.get("judge"), p["error_type"]),
                   judge_name=(p.get("judge") or {}).get("judge"), rationale=(p.get("judge") or {}).get("rationale"),
                   rules_edits=details.get("edits"), failed=failed, heldout=margins.get(p["id"]), reason=None,
                   prompt=p.get("prompt"), positive=_content(p.get("chosen")), negative=_content(p.get("rejected")))

    records_path = Path(config.records) if config.records else next(
        (p for p in (run_dir / "data" / "records.jsonl", run_dir.parent / "records.jsonl") if p.is_file()), None)
    rejected = list(_jsonl(inject_dir / "rejected.jsonl")) if inject_dir else []
    records = {}
    if rejected and records_path is not None and records_path.is_file():
        wanted = {r["record_id"] for r in rejected}
        records = {r["id"]: r for r in _jsonl(records_path) if r.get("id") in wanted}
    for r in rejected:
        attempts = r.get("attempts") or []
        last = attempts[-1] if attempts else {}
        record = records.get(r["record_id"], {})
        build.item(id=f"{r['record_id']}-{r['error_type']}", record=r["record_id"], type=r["error_type"],
                   status="rejected", injector=last.get("injector"), perturbations=[],
                   difference=last.get("difference"), changed_tokens=last.get("changed_tokens"),
                   attempts=len(attempts), judge=_finding(last.get("judge"), r["error_type"]),
                   judge_name=(last.get("judge") or {}).get("judge"),
                   rationale=(last.get("judge") or {}).get("rationale"), rules_edits=None,
                   failed=[build.attempt(a) for a in attempts], heldout=None, reason=r.get("reason"),
                   prompt=record.get("prompt", []), positive=record.get("response", ""), negative=last.get("text"))

    rejects_path = (records_path.with_name(records_path.stem + ".rejects.jsonl") if records_path else
                    run_dir / "data" / "records.rejects.jsonl")
    input_rejects = [{"file": r.get("file"), "line": r.get("line"), "field": r.get("field"),
                      "reason": r.get("reason"), "kind": r.get("kind"),
                      "raw": build.text(r["raw"] if isinstance(r.get("raw"), str) else json.dumps(r.get("raw")))}
                     for r in _jsonl(rejects_path)]

    accepted = [i for i in build.items if i["status"] != "rejected"]
    histograms = {"edit_size": {"bins": _labels(EDIT_BINS), "counts": {}},
                  "difference": {"bins": _labels(DIFF_BINS), "counts": {}}}
    for item in accepted:
        for name, value, bounds in (("edit_size", item["changed_tokens"], EDIT_BINS),
                                    ("difference", item["difference"], DIFF_BINS)):
            if value is not None:
                counts = histograms[name]["counts"].setdefault(item["type"], [0] * len(bounds))
                counts[_bin(value, bounds)] += 1

    train_log = [{k: v for k, v in row.items() if isinstance(v, (int, float))}
                 for row in _jsonl(train_dir / "train_log.jsonl")]
    train = stages.get("train")
    return {
        "meta": {"title": config.title or f"seapo inspect: {run_dir.resolve().name}", "run_dir": str(run_dir),
                 "kind": "run" if (run_dir / "stages.json").is_file() else "inject"},
        "summary": {k: v for k, v in summary.items() if k != "shortcut_audit"},
        "prepare": stages.get("prepare"),
        "items": build.items,
        "input_rejects": input_rejects,
        "histograms": histograms,
        "profile": _profile(run_dir, inject_dir, summary),
        "plan": _plan(summary),
        "train": None if not (train or train_log) else {
            "log": train_log, "algo": (train or {}).get("settings", {}).get("algo"),
            "steps": (train or {}).get("global_step"), "train_pairs": (train or {}).get("train_pairs"),
            "heldout_pairs": (train or {}).get("heldout_pairs")},
        "heldout": _heldout(heldout),
        "compare": _comparison(run_dir / "eval"),
    }


def _labels(bounds: list[float]) -> list[str]:
    out = []
    for lo, hi in zip(bounds, [*bounds[1:], None], strict=True):
        if hi is None:
            out.append(f"{lo}+")
        elif isinstance(lo, int) and hi == lo + 1:
            out.append(str(lo))
        else:
            out.append(f"{lo}-{hi - 1}" if isinstance(lo, int) else f"{lo}-{hi}")
    return out


def _profile_path(run_dir: Path, inject_dir: Path | None, plan: dict[str, Any]) -> Path | None:
    """The profile a run made (``RUN_DIR/profile/profile.json``), else the one a bare inject folder's
    ``profile`` or ``top`` strategy followed (``summary.json``'s ``plan.profile``, a path as given to
    ``seapo inject``: tried as it is, then against the folder's parent, where ``seapo run`` keeps it)."""
    own = run_dir / "profile" / "profile.json"
    if own.is_file():
        return own
    named = plan.get("profile")
    if not named:
        return None
    candidates = [Path(named)]
    if inject_dir is not None and not Path(named).is_absolute():
        candidates.append(inject_dir.parent / "profile" / Path(named).name)
    return next((p for p in candidates if p.is_file()), None)


PROFILE_KEYS = ("data", "data_format", "items", "answers", "judged_correct", "erroneous", "unknown", "counts",
                "distribution", "rates", "intervals", "judge", "policy", "warnings", "policy_errors",
                "truncated_answers")
"""What the profile panel shows of ``profile.json`` (per-group figures and verdicts stay in the file)."""


def _profile(run_dir: Path, inject_dir: Path | None, summary: dict[str, Any]) -> dict[str, Any] | None:
    """The policy's error profile with its table cells formatted as ``report.md`` formats them; None when
    the run was not profiled. A profile the strategy named but that is gone: only its path, to say so."""
    from seapo.profile.stats import format_interval

    plan = summary.get("plan") or {}
    path = _profile_path(run_dir, inject_dir, plan)
    if path is None:
        return {"path": plan["profile"], "missing": True} if plan.get("profile") else None
    prof = _json(path) or {}
    out: dict[str, Any] = {k: prof.get(k) for k in PROFILE_KEYS}
    out["path"], out["missing"] = str(path), False
    dist, rates = prof.get("distribution") or {}, prof.get("rates") or {}
    out["cells"] = {t: {"count": str((prof.get("counts") or {}).get(t, "–")),
                        "share": format_interval(d.get("share"), d.get("low"), d.get("high")),
                        "rate": format_interval((rates.get(t) or {}).get("rate"), (rates.get(t) or {}).get("low"),
                                                (rates.get(t) or {}).get("high"))}
                    for t, d in dist.items()}
    return out


def _share(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def _plan(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The strategy's plan: planned negatives per type, their share, the profile strategies' target mix
    and floor (``summary.json``'s ``plan``), with the cells formatted."""
    plan = summary.get("plan")
    if not plan:
        return None
    types = sorted(set(plan.get("planned") or {}) | set(plan.get("target") or {}))
    return {"strategy": summary.get("strategy"), "planned": plan.get("planned") or {},
            "realised": plan.get("realised") or {}, "target": plan.get("target"), "floor": plan.get("floor"),
            "profile": plan.get("profile"), "types": types,
            "cells": {t: {"planned": str((plan.get("planned") or {}).get(t, 0)),
                          "realised": _share((plan.get("realised") or {}).get(t)),
                          "target": _share((plan.get("target") or {}).get(t)) if plan.get("target") is not None
                          else "–"} for t in types}}


def _heldout(heldout: dict[str, Any]) -> dict[str, Any] | None:
    """Held-out figures before and after training (per-pair details stay out: they go to the items), and
    the table's cells from :func:`seapo.train.heldout.heldout_rows`, the formatter of ``report.md``."""
    if not heldout.get("before"):
        return None
    from seapo.train.heldout import HELDOUT_COLUMNS, effect_verdict, heldout_rows

    figures = {side: {k: v for k, v in (heldout.get(side) or {}).items() if k != "details"} or None
               for side in ("before", "after")}
    return {**figures, "columns": list(HELDOUT_COLUMNS),
            "rows": [list(r) for r in heldout_rows(figures["before"], figures["after"])],
            "verdict": effect_verdict(figures["after"])}


def _comparison(eval_dir: Path) -> dict[str, Any] | None:
    """The ``seapo compare`` table of the run's evaluations: columns, rows of scores x100, each row's
    cells as ``comparison.md`` writes them (:func:`seapo.evaluate.compare.score_cells`), notes."""
    paths = sorted(eval_dir.glob("*/metrics.json")) if eval_dir.is_dir() else []
    if not paths:
        return None
    from seapo.errors import SeapoError
    from seapo.evaluate.compare import column_headers, compare, score_cells

    try:
        result = compare(paths, verify=False)
    except SeapoError as exc:
        return {"columns": [], "headers": [], "rows": [], "notes": [f"not comparable: {exc}"]}
    return {"columns": result.columns, "headers": column_headers(result.columns),
            "rows": [{**row, "label": row["label"].strip("*"), "cells": score_cells(row)} for row in result.rows],
            "notes": result.notes}
