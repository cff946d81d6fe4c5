"""Held-out preference accuracy against an independent, one-sequence-at-a-time computation."""

from __future__ import annotations

import pytest
import torch

from seapo.io import read_jsonl
from seapo.train.data import load_preferences, select_pairs
from seapo.train.heldout import preference_accuracy


def _independent_logp(model, tok, prompt, response) -> float:
    # Text-level: render with the chat template, tokenize the strings, score the response part alone.
    prompt_text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    full_text = tok.apply_chat_template([*prompt, {"role": "assistant", "content": response}], tokenize=False)
    assert full_text.startswith(prompt_text)
    n_prompt = len(tok(prompt_text, add_special_tokens=False)["input_ids"])
    ids = torch.tensor([tok(full_text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logp = model(ids).logits[0, :-1].log_softmax(-1)
    targets = ids[0, 1:]
    return logp[torch.arange(len(targets)), targets][n_prompt - 1:].sum().item()


def test_accuracy_and_margins_match_an_independent_computation(tiny_lm, demo_negatives):
    model, tok = tiny_lm
    pairs = select_pairs(load_preferences(demo_negatives).groups[:5], "all", seed=0)
    result = preference_accuracy(model, pairs, tok, batch_size=4, return_details=True)
    margins = {}
    for p, d in zip(pairs, result["details"], strict=True):
        chosen = _independent_logp(model, tok, p.prompt, p.chosen)
        rejected = _independent_logp(model, tok, p.prompt, p.rejected)
        assert d["chosen_logp"] == pytest.approx(chosen, rel=1e-4, abs=1e-3)
        assert d["rejected_logp"] == pytest.approx(rejected, rel=1e-4, abs=1e-3)
        margins.setdefault(p.error_type, []).append(chosen - rejected)
    everything = [m for ms in margins.values() for m in ms]
    assert result["overall"]["n"] == 15
    assert result["overall"]["accuracy"] == pytest.approx(sum(m > 0 for m in everything) / 15)
    assert result["overall"]["mean_margin"] == pytest.approx(sum(everything) / 15, rel=1e-4)
    for et, ms in margins.items():
        assert result["per_error_type"][et]["accuracy"] == pytest.approx(sum(m > 0 for m in ms) / len(ms))
        assert result["per_error_type"][et]["n"] == len(ms)
    # Batching must not change the numbers.
    single = preference_accuracy(model, pairs, tok, batch_size=1)
    assert single["overall"]["mean_margin"] == pytest.approx(result["overall"]["mean_margin"], rel=1e-4)


def test_pairs_jsonl_rows_are_accepted(tiny_lm, demo_negatives):
    model, tok = tiny_lm
    rows = read_jsonl(demo_negatives)[:3]
    result = preference_accuracy(model, rows, tok)
    assert result["overall"]["n"] == 3 and set(result["per_error_type"]) == {rows[0]["error_type"]}
