"""Held-out preference accuracy: does the model give the positive a higher log-likelihood?

For each pair the response tokens of ``chosen`` and ``rejected`` are scored given the
chat-templated prompt (the same tokenization TRL's trainers train on: the response starts
where prompt-with-generation-prompt and prompt+response stop sharing tokens). A pair counts
as correct when ``sum log p(chosen) > sum log p(rejected)``; the margin is the difference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from seapo.train.data import Pair

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_response(tokenizer: PreTrainedTokenizerBase, prompt: list[dict[str, str]], response: str,
                    max_length: int | None = None) -> tuple[list[int], int]:
    """Token ids of prompt + response and the index where the response starts (TRL's rule)."""
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": response}],
                                             tokenize=True, return_dict=True)["input_ids"]
    start = _common_prefix(prompt_ids, full_ids)
    if max_length is not None:
        full_ids = full_ids[:max_length]  # keep_start truncation, as in training
    return list(full_ids), min(start, len(full_ids))


def _as_pair(p: Pair | dict[str, Any]) -> Pair:
    if isinstance(p, Pair):
        return p
    content = (lambda v: v["content"] if isinstance(v, dict) else v)  # noqa: E731
    return Pair(p.get("record_id", ""), p["prompt"], content(p["chosen"]), content(p["rejected"]),
                p.get("error_type", "unknown"), p.get("id", ""))


def sequence_logprobs(model: PreTrainedModel, sequences: Sequence[tuple[list[int], int]], *,
                      batch_size: int = 8, pad_token_id: int = 0) -> list[float]:
    """Summed log-probability of tokens ``ids[start:]`` of each sequence, batched by length."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]), reverse=True)
    out = [0.0] * len(sequences)
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
                        out[i] = 0.0 if start >= len(seq) else float("nan")
                        continue
                    # logits at position t predict token t+1
                    lp = logits[row, start - 1:len(seq) - 1].float().log_softmax(-1)
                    target = torch.tensor(seq[start:], device=lp.device)
                    out[i] = lp.gather(-1, target[:, None]).sum().item()
    finally:
        model.train(was_training)
    return out


def preference_accuracy(model: PreTrainedModel, pairs: Sequence[Pair | dict[str, Any]],
                        tokenizer: PreTrainedTokenizerBase, *, batch_size: int = 8,
                        max_length: int | None = None, return_details: bool = False) -> dict[str, Any]:
    """Share of pairs whose positive gets the higher summed response log-likelihood, overall and
    per error type, with the mean margin ``logp(chosen) - logp(rejected)``.

    ``pairs``: :class:`~seapo.train.data.Pair` objects or ``pairs.jsonl`` rows. ``model`` is any
    causal LM (a PEFT model too), used as it is (device, dtype). With ``return_details`` the result
    also lists each pair's ``chosen_logp``, ``rejected_logp`` and ``margin``.
    """
    items = [_as_pair(p) for p in pairs]
    seqs: list[tuple[list[int], int]] = []
    for p in items:
        seqs.append(encode_response(tokenizer, p.prompt, p.chosen, max_length))
        seqs.append(encode_response(tokenizer, p.prompt, p.rejected, max_length))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores = sequence_logprobs(model, seqs, batch_size=batch_size, pad_token_id=pad or 0)
    groups: dict[str, list[float]] = defaultdict(list)
    details = []
    for k, p in enumerate(items):
        chosen, rejected = scores[2 * k], scores[2 * k + 1]
        margin = chosen - rejected
        groups[p.error_type].append(margin)
        groups["overall"].append(margin)
        details.append({"id": p.id, "record_id": p.record_id, "error_type": p.error_type,
                        "chosen_logp": chosen, "rejected_logp": rejected, "margin": margin})

    def summary(margins: list[float]) -> dict[str, Any]:
        return {"n": len(margins), "accuracy": sum(m > 0 for m in margins) / len(margins) if margins else None,
                "mean_margin": sum(margins) / len(margins) if margins else None}

    result: dict[str, Any] = {"overall": summary(groups.pop("overall", [])),
                              "per_error_type": {t: summary(m) for t, m in sorted(groups.items())}}
    if return_details:
        result["details"] = details
    return result
