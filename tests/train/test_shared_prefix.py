"""The shared-prefix forward equals TRL's unshared one: per-sequence log-probabilities, LoRA
gradients and a short training run's loss curve, on real SeaPO pairs, fp32 on CPU."""

from __future__ import annotations

import pytest
import torch

from seapo.io import read_jsonl, write_jsonl
from seapo.train.data import load_preferences, ordered_pair_rows, select_pairs
from seapo.train.shared_prefix import plan_batch, shared_prefix_trainer
from seapo.train.trainer import train


@pytest.fixture(scope="module")
def dpo_trainer(tiny_model, injected_pairs, tmp_path_factory):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    tok = AutoTokenizer.from_pretrained(tiny_model)
    pairs = select_pairs(load_preferences(injected_pairs).groups[:6], "all", seed=0)
    rows = ordered_pair_rows(pairs, 4, seed=0, group_by_length=True)[-4:]  # the shorter ones
    args = DPOConfig(output_dir=str(tmp_path_factory.mktemp("sp")), per_device_train_batch_size=4, max_length=384,
                     report_to="none", use_cpu=True, train_sampling_strategy="sequential", dataloader_num_workers=0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    trainer = shared_prefix_trainer()(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                      processing_class=tok,
                                      peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                             task_type="CAUSAL_LM"))
    with torch.no_grad():  # LoRA B starts at 0: give it values so every adapter weight gets a gradient
        gen = torch.Generator().manual_seed(0)
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return trainer


def _forward(trainer, batch, packed: bool):
    model = trainer.model
    model.zero_grad(set_to_none=True)
    trainer.packer.plan = plan_batch(batch["input_ids"], batch["attention_mask"]) if packed else None
    try:
        labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels,
                    fused_lm_head=True, use_cache=False)
    finally:
        trainer.packer.plan = None
    per_token = out.log_probs
    seq = per_token.sum(dim=1)
    (seq * torch.linspace(0.5, 1.5, len(seq))).sum().backward()  # a weighted sum: every sequence's gradient counts
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return per_token.detach(), seq.detach(), out.entropy.detach(), grads


def test_log_probs_and_lora_gradients_equal_the_unshared_forward(dpo_trainer):
    batch = next(iter(dpo_trainer.get_train_dataloader()))
    plan = plan_batch(batch["input_ids"], batch["attention_mask"])
    # Real SeaPO pairs: the packed rows are much shorter than the two unshared rows together.
    assert plan.shared_tokens > 0.3 * plan.tokens_unshared
    assert plan.input_ids.numel() < batch["input_ids"].numel()
    tok_a, seq_a, ent_a, grad_a = _forward(dpo_trainer, batch, packed=False)
    tok_b, seq_b, ent_b, grad_b = _forward(dpo_trainer, batch, packed=True)
    mask = batch["completion_mask"][:, 1:].bool()
    torch.testing.assert_close(tok_b[mask], tok_a[mask], atol=1e-4, rtol=0)
    torch.testing.assert_close(seq_b, seq_a, atol=1e-4, rtol=1e-6)
    torch.testing.assert_close(ent_b[mask], ent_a[mask], atol=1e-4, rtol=0)
    assert grad_a and set(grad_a) == set(grad_b)
    nonzero = 0
    for name, g in grad_a.items():
        torch.testing.assert_close(grad_b[name], g, atol=1e-4, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
        nonzero += bool(g.abs().max() > 1e-6)
    assert nonzero > len(grad_a) / 2


@pytest.mark.slow
def test_a_short_training_run_has_the_same_loss_curve(pairs_subset, tiny_config, injected_pairs, tmp_path):
    rows = read_jsonl(injected_pairs)[:8]
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, rows)
    curves, logged = {}, {}
    for shared in (True, False):
        cfg = tiny_config(f"sp-{shared}", algo="dpo", shared_prefix=shared, dtype="fp32", max_steps=3, batch_size=4,
                          per_device_batch_size=4, learning_rate=5e-3, lr_scheduler="constant", pairing="all",
                          save_steps=1000, max_length=512)
        log = read_jsonl(train(path, cfg).log_path)
        curves[shared] = [r["loss"] for r in log if "loss" in r]
        logged[shared] = log
    assert len(curves[True]) == 3
    # Stated tolerance: 1e-4 absolute per step (fp32; only summation order differs).
    assert curves[True] == pytest.approx(curves[False], abs=1e-4)
    assert curves[True][-1] < curves[True][0]
    assert 0.3 < logged[True][0]["shared_prefix/saved_fraction"] < 1
    assert "shared_prefix/saved_fraction" not in logged[False][0]
