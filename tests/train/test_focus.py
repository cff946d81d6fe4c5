"""``focus: divergent``, APO and LD-DPO reach TRL as intended: the prompt/completion boundaries the
trainer tokenizes on real injected pairs, and the loss it computes."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer, TrainerCallback

from seapo.errors import ConfigError
from seapo.io import read_jsonl
from seapo.train.config import TrainConfig
from seapo.train.data import encode_response, load_preferences, select_pairs, split_at_divergence
from seapo.train.trainer import train


class Capture(TrainerCallback):
    """What the trainer itself holds when training starts: its arguments and tokenized dataset."""

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.args = args
        self.rows = train_dataloader.dataset.to_list()


def _first_difference(a, b):
    return next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)


def _pairs(path, n):
    return select_pairs(load_preferences(path).groups[:n], "all", seed=0)


def test_the_split_is_at_the_first_differing_token_and_loses_no_text(tiny_model, injected_pairs):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    pairs = _pairs(injected_pairs, 16)
    shared = 0
    for p in pairs:
        s = split_at_divergence(tok, p)
        c_ids, start = encode_response(tok, p.prompt, p.chosen)
        r_ids, _ = encode_response(tok, p.prompt, p.rejected)
        prompt_text = tok.apply_chat_template(p.prompt, add_generation_prompt=True, tokenize=False)
        for text, response in ((s.prompt + s.chosen, p.chosen), (s.prompt + s.rejected, p.rejected)):
            full = tok.apply_chat_template([*p.prompt, {"role": "assistant", "content": response}], tokenize=False)
            assert full.startswith(text) and text.endswith(tok.eos_token)  # nothing lost but the final newline
            assert full[len(text):].strip() == ""
        assert s.prompt.startswith(prompt_text)
        cut = start + s.shared_tokens
        assert tok(s.prompt, add_special_tokens=False)["input_ids"] == c_ids[:cut]  # re-tokenizes to itself
        # Everything before the cut is shared; the first difference is at most a token or two after it.
        assert c_ids[:cut] == r_ids[:cut]
        assert _first_difference(c_ids, r_ids) - cut in (0, 1, 2)
        shared += s.shared_tokens
    # Rules negatives are local edits: most of each response is a shared prefix.
    total = sum(len(encode_response(tok, p.prompt, p.chosen)[0]) - encode_response(tok, p.prompt, p.chosen)[1]
                for p in pairs)
    assert shared > 0.3 * total


@pytest.mark.parametrize("algo", ["dpo", "kto"])
def test_the_trainer_sees_the_shared_prefix_as_prompt(algo, tiny_model, injected_pairs, tiny_config, tmp_path):
    """What TRL tokenized: under full the completion starts at the response, under divergent at
    the cut of split_at_divergence, and each sequence is the pair's own full tokenization."""
    tok = AutoTokenizer.from_pretrained(tiny_model)
    rows = read_jsonl(injected_pairs)[:6]
    pairs_path = tmp_path / "pairs.jsonl"
    from seapo.io import write_jsonl

    write_jsonl(pairs_path, rows)
    results = {}
    for focus in ("divergent",):  # (full: TRL's own boundary, tested with every run elsewhere)
        seen = Capture()
        # one update over every row (max_steps reads only the rows its updates take: all of them here)
        train(pairs_path, tiny_config(f"{algo}-{focus}", algo=algo, focus=focus, max_steps=1,
                                      batch_size=12 if algo == "kto" else 6, per_device_batch_size=2,
                                      max_length=1024, pairing="all"), callbacks=[seen])
        results[focus] = seen.rows
    newline = tok("\n")["input_ids"]
    allowed = {"full": {}, "divergent": {}}  # a pair's sequence -> the prompt lengths it may be trained with
    for p in _pairs(pairs_path, 6):
        c_ids, start = encode_response(tok, p.prompt, p.chosen)
        r_ids, _ = encode_response(tok, p.prompt, p.rejected)
        cut = _first_difference(c_ids, r_ids)
        for ids in (c_ids, r_ids):
            allowed["full"].setdefault(tuple(ids), set()).add(start)
            # divergent: at the first difference or a token or two before it, and past the response start
            # (the template's final newline is not trained on: one EOS ends the completion)
            allowed["divergent"].setdefault(tuple(ids[:-1] if ids[-len(newline):] == newline else ids), set()).update(
                {c for c in (cut, cut - 1, cut - 2) if c >= start})
    for focus, seen_rows in results.items():
        assert seen_rows
        for row in seen_rows:
            for key in (["chosen_ids", "rejected_ids"] if algo == "dpo" else ["completion_ids"]):
                ids = tuple(row["prompt_ids"] + row[key])
                assert ids in allowed[focus], "the trainer's sequence is not a pair's full tokenization"
                assert len(row["prompt_ids"]) in allowed[focus][ids]
    # The shared prefix really moved: most prompts reach past the response start.
    starts = {min(v) for v in allowed["full"].values()}
    assert sum(len(r["prompt_ids"]) > min(starts) for r in results["divergent"]) > len(results["divergent"]) / 2
    # KTO: both rows of a pair get the same extended prompt.
    if algo == "kto":
        prompts = [tuple(r["prompt_ids"]) for r in results["divergent"]]
        assert all(prompts.count(p) % 2 == 0 for p in prompts)


@pytest.mark.parametrize(("algo", "loss_type", "first_loss"), [
    ("apo_zero", "apo_zero", 1.0), ("apo_down", "apo_down", 1.0), ("dpo", "sigmoid", 0.6931)])
def test_the_loss_type_reaches_trl(algo, loss_type, first_loss, pairs_subset, tiny_config):
    # At step 1 the policy is its reference: DPO's loss is log 2; APO-zero's and APO-down's are 0.5 + 0.5.
    seen = Capture()
    result = train(pairs_subset(2), tiny_config(algo=algo, max_steps=1, batch_size=2, per_device_batch_size=2),
                   callbacks=[seen])
    assert seen.args.loss_type == [loss_type]
    loss = next(r["loss"] for r in read_jsonl(result.log_path) if "loss" in r)
    assert loss == pytest.approx(first_loss, abs=2e-3)


@pytest.mark.slow
def test_ld_alpha_reaches_trl_and_reweights_the_tail(pairs_subset, tiny_config):
    logged = {}
    for ld in (None, 0.0):
        seen = Capture()
        result = train(pairs_subset(2), tiny_config(f"ld-{ld}", algo="dpo", ld_alpha=ld, max_steps=1, batch_size=2,
                                                    per_device_batch_size=2), callbacks=[seen])
        assert seen.args.ld_alpha == ld
        logged[ld] = next(r for r in read_jsonl(result.log_path) if "loss" in r)
    # ld_alpha=0 drops the longer response's tail beyond the shorter one: its summed log-prob rises.
    assert logged[0.0]["logps/chosen"] + logged[0.0]["logps/rejected"] > \
        logged[None]["logps/chosen"] + logged[None]["logps/rejected"] + 1e-3


def test_ld_alpha_is_refused_outside_the_dpo_family():
    with pytest.raises(ConfigError, match="ld_alpha"):
        TrainConfig(algo="kto", ld_alpha=0.5)
    with pytest.raises(ConfigError, match="focus"):
        TrainConfig(algo="simpo", focus="divergent")
    assert TrainConfig(algo="apo_zero", ld_alpha=0.5, focus="divergent").ld_alpha == 0.5
