"""Held-out metrics: does the model prefer the positive, *for the injected error* and not its length?

A SeaPO pair is a minimal contrast: the negative is the positive with one error injected, so the
two share the prompt and usually most of the response. The figures kept per pair, overall and per
error type (each with a 95% bootstrap confidence interval over *records*, seeded):

* ``divergent_span``: the positive's mean per-token log-likelihood from the first token where the
  two responses differ to the end, above the negative's. The shared prefix carries no preference
  and is left out; the mean (not the sum) keeps an insertion (a longer negative) from losing by
  length alone. Meaningful before and after training.
* ``implicit_reward``: the policy-vs-reference log-ratio of the positive above the negative's,
  ``[log pi(c) - log ref(c)] - [log pi(r) - log ref(r)]`` -- the quantity DPO optimises (TRL logs
  ``beta`` times it as ``rewards/margins``). The reference is the untrained model, i.e. the
  ``before`` measurement, so it exists only after training (before it is 0 for every pair).
* ``summed_logp``: the raw summed response log-likelihood comparison, kept for continuity but
  **length-sensitive**: a longer response loses probability mass per token, so insertion negatives
  "lose" before any training.

Tokenization is the one TRL's trainers train on: the response starts where
prompt-with-generation-prompt and prompt+response stop sharing tokens. A tie counts half (so an
untrained model's implicit-reward accuracy is exactly 0.5).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from seapo.train.data import Pair, common_prefix, encode_response

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

METRICS = ("divergent_span", "implicit_reward", "summed_logp")
"""The held-out figures, most meaningful first (module docstring)."""
LENGTH_SENSITIVE = ("summed_logp",)
__all__ = ["METRICS", "bootstrap_ci", "common_prefix", "effect_verdict", "encode_response", "heldout_rows",
           "preference_accuracy", "sequence_logprobs", "token_logprobs", "without_details"]
BOOTSTRAP_SAMPLES = 2000


def _as_pair(p: Pair | dict[str, Any]) -> Pair:
    if isinstance(p, Pair):
        return p
    content = (lambda v: v["content"] if isinstance(v, dict) else v)  # noqa: E731
    return Pair(p.get("record_id", ""), p["prompt"], content(p["chosen"]), content(p["rejected"]),
                p.get("error_type", "unknown"), p.get("id", ""))


def token_logprobs(model: PreTrainedModel, sequences: Sequence[tuple[list[int], int]], *,
                   batch_size: int = 8, pad_token_id: int = 0) -> list[list[float]]:
    """Log-probability of each token ``ids[start:]`` of each sequence (given the tokens before it),
    batched longest-first with right padding. ``start == 0`` (nothing before the first token) gives
    ``[nan]``."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]), reverse=True)
    out: list[list[float]] = [[] for _ in sequences]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for b in range(0, len(order), batch_size):
                idx = order[b:b + batch_size]
                width = max(len(sequences[i][0]) for i in idx)
                ids = torch.full((len(idx), width), pad_token_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    seq = sequences[i][0]
                    ids[row, :len(seq)] = torch.tensor(seq)
                    mask[row, :len(seq)] = 1
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
                for row, i in enumerate(idx):
                    seq, start = sequences[i]
                    if start >= len(seq) or start == 0:
                        out[i] = [] if start >= len(seq) else [math.nan]
                        continue
                    # logits at position t predict token t+1
                    lp = logits[row, start - 1:len(seq) - 1].float().log_softmax(-1)
                    target = torch.tensor(seq[start:], device=lp.device)
                    out[i] = lp.gather(-1, target[:, None])[:, 0].tolist()
    finally:
        model.train(was_training)
    return out


def sequence_logprobs(model: PreTrainedModel, sequences: Sequence[tuple[list[int], int]], *,
                      batch_size: int = 8, pad_token_id: int = 0) -> list[float]:
    """Summed log-probability of tokens ``ids[start:]`` of each sequence (see :func:`token_logprobs`)."""
    return [sum(t) for t in token_logprobs(model, sequences, batch_size=batch_size, pad_token_id=pad_token_id)]


def bootstrap_ci(values: Sequence[float], clusters: Sequence[str], *, seed: int = 0,
                 samples: int = BOOTSTRAP_SAMPLES, level: float = 0.95) -> list[float] | None:
    """Percentile confidence interval of the mean of ``values``, resampling whole clusters (records:
    the pairs of one record share a positive, so they are not independent). None for no values."""
    import numpy as np

    if not values:
        return None
    keys = sorted(set(clusters))
    index = {k: i for i, k in enumerate(keys)}
    sums = np.zeros(len(keys))
    counts = np.zeros(len(keys))
    for v, c in zip(values, clusters, strict=True):
        sums[index[c]] += v
        counts[index[c]] += 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(keys), size=(samples, len(keys)))
    weights = np.stack([np.bincount(row, minlength=len(keys)) for row in draws])  # samples x clusters
    means = (weights @ sums) / (weights @ counts)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)]


def _win(margin: float) -> float:
    """1 when the positive is ahead, 0 when behind, a tie half."""
    return 1.0 if margin > 0 else 0.0 if margin < 0 else 0.5


def _metric(margins: Sequence[float], records: Sequence[str], seed: int) -> dict[str, Any]:
    """Accuracy and mean margin with their CIs over the pairs that have this figure (finite margin)."""
    kept = [(m, r) for m, r in zip(margins, records, strict=True) if m is not None and math.isfinite(m)]
    ms, rs = [m for m, _ in kept], [r for _, r in kept]
    wins = [_win(m) for m in ms]
    return {"n": len(ms), "accuracy": sum(wins) / len(ms) if ms else None,
            "accuracy_ci": bootstrap_ci(wins, rs, seed=seed),
            "mean_margin": sum(ms) / len(ms) if ms else None, "mean_margin_ci": bootstrap_ci(ms, rs, seed=seed)}


def _summary(details: Sequence[dict[str, Any]], seed: int, with_reward: bool) -> dict[str, Any]:
    records = [d["record_id"] or d["id"] for d in details]
    out: dict[str, Any] = {"n": len(details), "records": len(set(records))}
    for name in METRICS:
        if name == "implicit_reward" and not with_reward:
            out[name] = None  # no reference yet: 0 for every pair by construction
            continue
        out[name] = _metric([d[f"{name}_margin"] for d in details], records, seed)
        if name in LENGTH_SENSITIVE:
            out[name]["length_sensitive"] = True
    return out


def _change(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]], seed: int) -> dict[str, Any]:
    """After minus before, per pair (paired bootstrap over records), of the accuracy and the margin
    of each figure that exists on both sides."""
    out: dict[str, Any] = {}
    for name in ("divergent_span", "summed_logp"):
        rows = [(b[f"{name}_margin"], a[f"{name}_margin"], a["record_id"] or a["id"])
                for b, a in zip(before, after, strict=True)
                if b[f"{name}_margin"] is not None and a[f"{name}_margin"] is not None
                and math.isfinite(b[f"{name}_margin"]) and math.isfinite(a[f"{name}_margin"])]
        wins = [_win(a) - _win(b) for b, a, _ in rows]
        margins = [a - b for b, a, _ in rows]
        recs = [r for _, _, r in rows]
        out[name] = {"n": len(rows), "accuracy_delta": sum(wins) / len(rows) if rows else None,
                     "accuracy_delta_ci": bootstrap_ci(wins, recs, seed=seed),
                     "margin_delta": sum(margins) / len(rows) if rows else None,
                     "margin_delta_ci": bootstrap_ci(margins, recs, seed=seed)}
    return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def preference_accuracy(model: PreTrainedModel, pairs: Sequence[Pair | dict[str, Any]],
                        tokenizer: PreTrainedTokenizerBase, *, batch_size: int = 8,
                        max_length: int | None = None, return_details: bool = False,
                        before: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """The held-out figures (module docstring) of ``model`` on ``pairs``, overall and per error type.

    ``pairs``: :class:`~seapo.train.data.Pair` objects or ``pairs.jsonl`` rows. ``model`` is any
    causal LM (a PEFT model too), used as it is (device, dtype). ``before``: this function's result
    with details for the untrained (reference) model on the same pairs; with it the result also has
    ``implicit_reward`` and a ``change`` block (after minus before, paired). ``seed`` seeds the
    bootstrap. With ``return_details`` (implied when the result is to serve as a later ``before``)
    each pair's ``chosen_logp``, ``rejected_logp``, span means and margins are listed.
    """
    items = [_as_pair(p) for p in pairs]
    seqs: list[tuple[list[int], int]] = []
    for p in items:
        seqs.append(encode_response(tokenizer, p.prompt, p.chosen, max_length))
        seqs.append(encode_response(tokenizer, p.prompt, p.rejected, max_length))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores = token_logprobs(model, seqs, batch_size=batch_size, pad_token_id=pad or 0)
    reference = before["details"] if before else None
    if reference is not None and [d["id"] for d in reference] != [p.id for p in items]:
        raise ValueError("`before` was measured on other pairs")
    details = []
    for k, p in enumerate(items):
        (c_ids, c_start), (r_ids, r_start) = seqs[2 * k], seqs[2 * k + 1]
        c_tok, r_tok = scores[2 * k], scores[2 * k + 1]
        # First differing token (the prompt is shared, so it is never before the response start).
        div = max(common_prefix(c_ids, r_ids), c_start)
        c_span, r_span = c_tok[div - c_start:], r_tok[div - r_start:]
        c_mean, r_mean = _mean(c_span), _mean(r_span)
        chosen, rejected = sum(c_tok), sum(r_tok)
        d: dict[str, Any] = {
            "id": p.id, "record_id": p.record_id, "error_type": p.error_type,
            "chosen_logp": chosen, "rejected_logp": rejected, "summed_logp_margin": chosen - rejected,
            "shared_tokens": div - c_start, "chosen_span_tokens": len(c_span), "rejected_span_tokens": len(r_span),
            "chosen_span_mean": c_mean, "rejected_span_mean": r_mean,
            # No divergent token inside max_length on either side: nothing to compare (left out).
            "divergent_span_margin": (c_mean - r_mean) if c_mean is not None and r_mean is not None else None,
            "implicit_reward_margin": None}
        if reference is not None:
            ref = reference[k]
            d["implicit_reward_margin"] = (chosen - ref["chosen_logp"]) - (rejected - ref["rejected_logp"])
        details.append(d)

    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in details:
        groups[d["error_type"]].append(d)
    with_reward = reference is not None
    result: dict[str, Any] = {
        "overall": _summary(details, seed, with_reward),
        "per_error_type": {t: _summary(ds, seed, with_reward) for t, ds in sorted(groups.items())}}
    if reference is not None:
        by_type: dict[str, list[int]] = defaultdict(list)
        for k, d in enumerate(details):
            by_type[d["error_type"]].append(k)
        result["overall"]["change"] = _change(reference, details, seed)
        for t, ks in by_type.items():
            result["per_error_type"][t]["change"] = _change([reference[k] for k in ks], [details[k] for k in ks],
                                                            seed)
    if return_details:
        result["details"] = details
    return result


def without_details(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The result less its per-pair details (what result.json and the run's stages.json keep)."""
    return None if result is None else {k: v for k, v in result.items() if k != "details"}


def format_figure(value: float | None, ci: Sequence[float] | None = None, signed: bool = False) -> str:
    """``0.625 [0.41, 0.83]``: a figure with its CI; ``-`` for none."""
    if value is None:
        return "-"
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return f"{text} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else text


HELDOUT_COLUMNS = ("error type", "pairs", "divergent-span acc. before", "divergent-span acc. after",
                   "divergent-span acc. change", "implicit-reward acc. after", "reward margin after",
                   "summed-logp acc. before -> after (length-sensitive)")
"""Columns of :func:`heldout_rows`: the CLI's and the run report's held-out table."""


def effect_verdict(after: dict[str, Any] | None) -> str | None:
    """One plain sentence: did training move the held-out preference, by the overall implicit-reward
    accuracy's 95% CI against 0.5 (no change)? When the interval holds 0.5, how far short the set is,
    read off that same interval: it excludes 0.5 once the distance from the estimate to its bound on
    0.5's side is below the effect, and that distance shrinks as 1/sqrt(records) (the bootstrap
    resamples records), so at the measured effect it needs more than ``records x (distance /
    effect)^2`` records -- always more than it has. None without an after-training measurement."""
    overall = (after or {}).get("overall") or {}
    reward = overall.get("implicit_reward") or {}
    accuracy, ci, n = reward.get("accuracy"), reward.get("accuracy_ci"), reward.get("n") or overall.get("n")
    if accuracy is None or not ci:
        return None
    lo, hi = ci
    records = overall.get("records") or n
    shown = f"implicit-reward accuracy {accuracy:.3f} [{lo:.3f}, {hi:.3f}] over {n} held-out pairs"
    if records != n:
        shown += f" ({records} records)"
    if lo > 0.5:
        return f"Training moved the held-out preference the right way: {shown}; the interval excludes 0.5."
    if hi < 0.5:
        return f"Training moved the held-out preference the WRONG way: {shown}; the interval excludes 0.5."
    effect = accuracy - 0.5
    if effect == 0 or not records:
        need = "no effect was measured at all"
    else:
        distance = accuracy - lo if effect > 0 else hi - accuracy  # estimate to the bound that holds 0.5
        needed = math.floor(records * (distance / abs(effect)) ** 2) + 1
        pairs = math.ceil(needed * n / records)
        need = (f"at the measured effect ({effect:+.3f}) about {needed} held-out records would be needed "
                f"against {records} now" + (f" (about {pairs} pairs at {n / records:.1f} pairs a record)"
                                            if records != n else ""))
    return (f"This held-out set is too small to show an effect: {shown} includes 0.5 (no change); {need} "
            "for the interval to exclude 0.5.")


def heldout_rows(before: dict[str, Any], after: dict[str, Any] | None) -> list[tuple[str, ...]]:
    """One row of formatted cells (95% CIs in brackets) per error type and overall, for ``seapo
    train``'s table and the run report (one formatting for both)."""
    after = after or {}
    rows = [("overall", before["overall"], after.get("overall") or {})]
    rows += [(t, b, (after.get("per_error_type") or {}).get(t) or {}) for t, b in before["per_error_type"].items()]
    out = []
    def cell(side: dict[str, Any], metric: str, key: str, signed: bool = False) -> str:
        figures = side.get(metric) or {}
        return format_figure(figures.get(key), figures.get(f"{key}_ci"), signed)

    for name, b, a in rows:
        change = (a.get("change") or {}).get("divergent_span") or {}
        out.append((
            name, str(b["n"]),
            cell(b, "divergent_span", "accuracy"), cell(a, "divergent_span", "accuracy"),
            format_figure(change.get("accuracy_delta"), change.get("accuracy_delta_ci"), signed=True),
            cell(a, "implicit_reward", "accuracy"), cell(a, "implicit_reward", "mean_margin", signed=True),
            f"{format_figure((b.get('summed_logp') or {}).get('accuracy'))} -> "
            f"{format_figure((a.get('summed_logp') or {}).get('accuracy'))}"))
    return out
