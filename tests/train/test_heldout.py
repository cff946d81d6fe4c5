"""Held-out metrics against an independent, one-sequence-at-a-time computation, on real pairs made by
``seapo inject`` (rules injector)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from seapo.io import read_jsonl
from seapo.train.data import load_preferences, select_pairs
from seapo.train.heldout import bootstrap_ci, heldout_rows, preference_accuracy


def _independent_tokens(model, tok, prompt, response) -> tuple[list[int], int, list[float]]:
    """Text-level: render with the chat template, tokenize the strings, score each token alone.
    Returns the full ids, where the response starts and the response tokens' log-probs."""
    prompt_text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    full_text = tok.apply_chat_template([*prompt, {"role": "assistant", "content": response}], tokenize=False)
    assert full_text.startswith(prompt_text)
    n_prompt = len(tok(prompt_text, add_special_tokens=False)["input_ids"])
    full = tok(full_text, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([full])
    with torch.no_grad():
        logp = model(ids).logits[0, :-1].log_softmax(-1)
    targets = ids[0, 1:]
    return full, n_prompt, logp[torch.arange(len(targets)), targets][n_prompt - 1:].tolist()


def _independent(model, tok, pair) -> dict[str, float]:
    c_ids, c_start, c_lp = _independent_tokens(model, tok, pair.prompt, pair.chosen)
    r_ids, r_start, r_lp = _independent_tokens(model, tok, pair.prompt, pair.rejected)
    div = 0
    while c_ids[div] == r_ids[div]:
        div += 1
    c_span, r_span = c_lp[div - c_start:], r_lp[div - r_start:]
    return {"chosen": sum(c_lp), "rejected": sum(r_lp), "shared": div - c_start,
            "span": sum(c_span) / len(c_span) - sum(r_span) / len(r_span)}


@pytest.fixture(scope="module")
def real_pairs(injected_pairs):
    return select_pairs(load_preferences(injected_pairs).groups[:5], "all", seed=0)


def test_every_figure_matches_an_independent_computation(tiny_lm, real_pairs):
    model, tok = tiny_lm
    result = preference_accuracy(model, real_pairs, tok, batch_size=4, return_details=True)
    summed, span = {}, {}
    for p, d in zip(real_pairs, result["details"], strict=True):
        ind = _independent(model, tok, p)
        assert d["chosen_logp"] == pytest.approx(ind["chosen"], rel=1e-4, abs=1e-3)
        assert d["rejected_logp"] == pytest.approx(ind["rejected"], rel=1e-4, abs=1e-3)
        assert d["shared_tokens"] == ind["shared"]
        assert d["divergent_span_margin"] == pytest.approx(ind["span"], rel=1e-4, abs=1e-4)
        summed.setdefault(p.error_type, []).append(ind["chosen"] - ind["rejected"])
        span.setdefault(p.error_type, []).append(ind["span"])
    # Rules negatives are local edits: most pairs share a response prefix that the span leaves out.
    assert sum(d["shared_tokens"] > 0 for d in result["details"]) > len(real_pairs) / 2
    n = len(real_pairs)
    overall = result["overall"]
    assert overall["n"] == n and overall["records"] == 5
    every = [m for ms in summed.values() for m in ms]
    assert overall["summed_logp"]["accuracy"] == pytest.approx(sum(m > 0 for m in every) / n)
    assert overall["summed_logp"]["mean_margin"] == pytest.approx(sum(every) / n, rel=1e-4)
    assert overall["summed_logp"]["length_sensitive"] is True
    every_span = [m for ms in span.values() for m in ms]
    assert overall["divergent_span"]["accuracy"] == pytest.approx(sum(m > 0 for m in every_span) / n)
    assert overall["implicit_reward"] is None  # no reference measurement yet
    for et, ms in span.items():
        group = result["per_error_type"][et]
        assert group["n"] == len(ms)
        assert group["divergent_span"]["accuracy"] == pytest.approx(sum(m > 0 for m in ms) / len(ms))
        lo, hi = group["divergent_span"]["accuracy_ci"]
        assert lo <= group["divergent_span"]["accuracy"] <= hi
    # Batching must not change the numbers.
    single = preference_accuracy(model, real_pairs[:4], tok, batch_size=1, return_details=True)
    for a, b in zip(single["details"], result["details"], strict=False):
        assert a["divergent_span_margin"] == pytest.approx(b["divergent_span_margin"], rel=1e-4, abs=1e-5)


def test_implicit_reward_is_the_log_ratio_against_the_reference(tiny_lm, real_pairs):
    model, tok = tiny_lm
    real_pairs = real_pairs[:9]
    before = preference_accuracy(model, real_pairs, tok, return_details=True, seed=3)
    # Against itself: every margin is 0, so accuracy is 0.5 by construction (a tie counts half).
    same = preference_accuracy(model, real_pairs, tok, before=before, seed=3)
    assert same["overall"]["implicit_reward"]["accuracy"] == 0.5
    assert same["overall"]["implicit_reward"]["mean_margin"] == pytest.approx(0.0, abs=1e-4)
    assert same["overall"]["change"]["divergent_span"]["accuracy_delta"] == 0.0
    # A changed policy: the margin is [log pi(c) - log ref(c)] - [log pi(r) - log ref(r)], per pair.
    policy = copy.deepcopy(model)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for param in policy.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.02)
    after = preference_accuracy(policy, real_pairs, tok, before=before, return_details=True, seed=3)
    margins = []
    for p, b, a in zip(real_pairs, before["details"], after["details"], strict=True):
        ind = _independent(policy, tok, p)
        expected = (ind["chosen"] - b["chosen_logp"]) - (ind["rejected"] - b["rejected_logp"])
        assert a["implicit_reward_margin"] == pytest.approx(expected, rel=1e-3, abs=1e-3)
        margins.append(expected)
    reward = after["overall"]["implicit_reward"]
    assert reward["accuracy"] == pytest.approx(sum((m > 0) + 0.5 * (m == 0) for m in margins) / len(margins))
    assert reward["mean_margin"] == pytest.approx(sum(margins) / len(margins), rel=1e-3, abs=1e-3)
    change = after["overall"]["change"]["divergent_span"]
    assert change["accuracy_delta"] == pytest.approx(after["overall"]["divergent_span"]["accuracy"]
                                                     - before["overall"]["divergent_span"]["accuracy"])
    assert change["accuracy_delta_ci"][0] <= change["accuracy_delta"] <= change["accuracy_delta_ci"][1]
    # The table of the CLI and the report: one row overall plus one per error type, CIs in brackets.
    rows = heldout_rows(before, after)
    assert [r[0] for r in rows] == ["overall", *before["per_error_type"]]
    assert rows[0][5].startswith(f"{reward['accuracy']:.3f} [")
    with pytest.raises(ValueError, match="other pairs"):
        preference_accuracy(model, real_pairs[:3], tok, before=before)


def test_the_bootstrap_resamples_records_not_pairs():
    # Two records of two pairs each: a resample takes both pairs of a record, so the mean is 0, 0.5 or 1.
    values, records = [1.0, 1.0, 0.0, 0.0], ["a", "a", "b", "b"]
    lo, hi = bootstrap_ci(values, records, seed=0, samples=500)
    assert (lo, hi) == (0.0, 1.0)
    assert bootstrap_ci(values, records, seed=0) == bootstrap_ci(values, records, seed=0)  # seeded
    assert bootstrap_ci([0.3, 0.3], ["a", "b"]) == [pytest.approx(0.3), pytest.approx(0.3)]
    assert bootstrap_ci([], []) is None
    # Pairs of one record move together: its CI is no narrower than the pair-level one would be.
    many = [float(i % 2) for i in range(40)]
    by_record = bootstrap_ci(many, [str(i // 2) for i in range(40)], seed=1)  # each record: one win, one loss
    assert by_record[1] - by_record[0] < 1e-9  # every record's mean is 0.5: no spread at all
    assert not math.isnan(by_record[0])


def test_pairs_jsonl_rows_are_accepted(tiny_lm, injected_pairs):
    model, tok = tiny_lm
    rows = read_jsonl(injected_pairs)[:3]
    result = preference_accuracy(model, rows, tok)
    assert result["overall"]["n"] == 3 and set(result["per_error_type"]) == {r["error_type"] for r in rows}


def test_the_effect_verdict_says_whether_the_interval_excludes_no_change():
    from seapo.train.heldout import effect_verdict

    def after(accuracy, ci, n, records=None):
        return {"overall": {"n": n, "records": records or n,
                            "implicit_reward": {"n": n, "accuracy": accuracy, "accuracy_ci": ci}}}

    assert "right way" in effect_verdict(after(0.8, [0.6, 0.95], 40))
    assert "WRONG way" in effect_verdict(after(0.2, [0.05, 0.4], 40))
    small = effect_verdict(after(0.556, [0.222, 0.889], 9))  # the demo's session-5 figures
    # the lower bound is 0.334 below the estimate, the effect 0.056: 9 * (0.334 / 0.056)^2 = 320.2 -> 321
    assert "too small" in small and "includes 0.5" in small and "about 321 held-out records" in small
    assert "no effect was measured" in effect_verdict(after(0.5, [0.3, 0.7], 10))
    assert effect_verdict(None) is None and effect_verdict({"overall": {"n": 3}}) is None


def test_the_records_needed_are_always_more_than_the_set_has_while_its_interval_holds_no_change():
    from seapo.train.heldout import effect_verdict

    # Session 9's demo: the half-width (0.278) equals the effect, so the old estimate said "about 9
    # pairs" -- the 9 it had. The interval is lopsided (clipped at 1): the lower bound is 0.334 away.
    text = effect_verdict({"overall": {"n": 9, "records": 9, "implicit_reward": {
        "n": 9, "accuracy": 0.778, "accuracy_ci": [0.444, 1.0]}}})
    assert "about 13 held-out records would be needed against 9 now" in text  # 9 * (0.334/0.278)^2 = 12.99
    for accuracy, lo, hi, records in ((0.6, 0.5, 0.7, 20), (0.7, 0.45, 0.9, 12), (0.3, 0.1, 0.55, 30),
                                      (0.55, 0.2, 0.9, 5)):
        text = effect_verdict({"overall": {"n": 2 * records, "records": records, "implicit_reward": {
            "n": 2 * records, "accuracy": accuracy, "accuracy_ci": [lo, hi]}}})
        needed = int(text.split("about ")[1].split(" held-out records")[0])
        assert needed > records, text
        assert f"against {records} now (about {2 * needed} pairs at 2.0 pairs a record)" in text
