"""The shared-prefix forward equals TRL's unshared one: per-sequence log-probabilities, LoRA
gradients, losses and a short training run's loss curve, on real SeaPO pairs, fp32 on CPU -- for
DPOTrainer, KTOTrainer (main, KL and reference forwards), CPOTrainer (SimPO) and ORPOTrainer."""

from __future__ import annotations

import pytest
import torch

from seapo.io import read_jsonl, write_jsonl
from seapo.train.data import load_preferences, ordered_kto_rows, ordered_pair_rows, select_pairs
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
    _assert_same_grads(grad_a, grad_b)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["dpo", "kto", "simpo", "orpo"])
def test_a_short_training_run_has_the_same_loss_curve(algo, pairs_subset, tiny_config, injected_pairs, tmp_path):
    rows = read_jsonl(injected_pairs)[:8]
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, rows)
    curves, logged = {}, {}
    for shared in (True, False):
        # kto: 4 rows = 2 pairs per micro-batch on both sides, so both read the same batches.
        cfg = tiny_config(f"sp-{shared}", algo=algo, shared_prefix=shared, dtype="fp32", max_steps=3, batch_size=4,
                          per_device_batch_size=4, learning_rate=5e-3, lr_scheduler="constant", pairing="all",
                          save_steps=1000, max_length=512)
        log = read_jsonl(train(path, cfg).log_path)
        curves[shared] = [r["loss"] for r in log if "loss" in r]
        logged[shared] = log
    assert len(curves[True]) == 3
    # Stated tolerance: 1e-4 absolute per step (fp32; only summation order differs).
    assert curves[True] == pytest.approx(curves[False], abs=1e-4)
    if algo == "dpo":  # step 1 is the policy at its reference; the others' losses vary with the batch
        assert curves[True][-1] < curves[True][0]
    if algo == "kto":  # its loss also moves with the KL estimate of each batch: it need not fall in 3 steps
        assert curves[True][-1] != curves[True][0]
    assert 0.3 < logged[True][0]["shared_prefix/saved_fraction"] < 1
    assert "shared_prefix/saved_fraction" not in logged[False][0]


# --------------------------------------------------------------------------------------------- KTO, SimPO, ORPO


def _lora_trainer(trainer_cls, args, rows, tiny_model):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    trainer = trainer_cls(model=model, args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=AutoTokenizer.from_pretrained(tiny_model),
                          peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
    with torch.no_grad():  # LoRA B starts at 0: the policy would equal its reference, every gradient of A be 0
        gen = torch.Generator().manual_seed(0)
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    trainer.model.train()
    return trainer


def _common(tmp_path_factory) -> dict:
    return dict(output_dir=str(tmp_path_factory.mktemp("sp")), max_length=384, report_to="none", use_cpu=True,
                train_sampling_strategy="sequential", dataloader_num_workers=0)


@pytest.fixture(scope="module")
def kto_trainer(tiny_model, injected_pairs, tmp_path_factory):
    from trl import KTOConfig

    # One pair per record (a record's pairs share its positive: KTO's KL rows would then meet their own
    # answer, in any order), the 4 shortest: two micro-batches of 2 pairs each.
    rows = ordered_kto_rows(_shortest_pairs(injected_pairs, 4), 4, seed=0, group_by_length=True)
    # No precomputed reference: the step's reference forwards (main and KL rows) run in _compute_loss too.
    args = KTOConfig(**_common(tmp_path_factory), per_device_train_batch_size=4, precompute_ref_log_probs=False)
    return _lora_trainer(shared_prefix_trainer("kto"), args, rows, tiny_model)


def _shortest_pairs(path, n):
    pairs = select_pairs(load_preferences(path).groups, "mixed", seed=0)
    return sorted(pairs, key=lambda p: len(p.chosen) + len(p.rejected))[:n]


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _assert_same_grads(grad_a, grad_b):
    assert grad_a and set(grad_a) == set(grad_b)
    nonzero = 0
    for name, g in grad_a.items():
        torch.testing.assert_close(grad_b[name], g, atol=1e-4, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
        nonzero += bool(g.abs().max() > 1e-6)
    assert nonzero > len(grad_a) / 2


def test_kto_packs_a_pairs_rows_and_the_kl_rows_of_each_prompt(kto_trainer):
    batch = next(iter(kto_trainer.get_train_dataloader()))
    assert batch["label"].tolist() == [True, True, False, False]  # [c0, c1, r0, r1]
    for prefix in ("", "KL_"):
        plan = plan_batch(batch[f"{prefix}input_ids"], batch[f"{prefix}attention_mask"])
        # Row i with row i + 2: the pair's rows (main), prompt i with both responses of pair i - 1 (KL).
        assert [(i, j) for i, j, _ in plan.groups] == [(0, 2), (1, 3)]
        assert plan.shared_tokens > 0.3 * plan.tokens_unshared
        assert plan.input_ids.numel() < batch[f"{prefix}input_ids"].numel()
    # TRL's KL rows: each prompt with another prompt's completion, never its own.
    def part(prefix, j, completion):
        keep = (batch[f"{prefix}attention_mask"][j] == 1) & (batch[f"{prefix}completion_mask"][j] == completion)
        return batch[f"{prefix}input_ids"][j][keep].tolist()

    for j in range(4):
        assert part("KL_", j, 0) == part("", j, 0)  # the row's own prompt
        assert part("KL_", j, 1) == part("", j - 1, 1) != part("", j, 1)  # the previous row's completion
        assert part("", j - 1, 0) != part("", j, 0)  # ... which answers another prompt


def test_kto_log_probs_loss_metrics_and_lora_gradients_equal_trls_unshared_forward(kto_trainer):
    trainer = kto_trainer
    model = trainer.model
    batch = next(iter(trainer.get_train_dataloader()))
    seen = {}
    for pack in (False, True):
        trainer.pack = pack
        before = trainer.packer.shared_tokens
        # Per-row log-probabilities of both forwards (main rows with gradient, KL rows).
        per_row = {}
        for prefix in ("", "KL_"):
            model.zero_grad(set_to_none=True)
            labels = batch[f"{prefix}input_ids"].masked_fill(batch[f"{prefix}completion_mask"] == 0, -100)
            with trainer._packing():
                out = model(input_ids=batch[f"{prefix}input_ids"], attention_mask=batch[f"{prefix}attention_mask"],
                            labels=labels, fused_lm_head=True, use_cache=False)
            (out.log_probs.sum(dim=1) * torch.linspace(0.5, 1.5, 4)).sum().backward()
            per_row[prefix] = (out.log_probs.detach(), out.entropy.detach(), _grads(model))
        # TRL's own loss: KL forward, main forward, reference forwards (adapter off) for both.
        model.zero_grad(set_to_none=True)
        trainer._metrics["train"].clear()
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        seen[pack] = per_row, loss.detach(), metrics, _grads(model)
        # Packed: 2 forwards here + KL, main and their 2 reference forwards in compute_loss, every one packed.
        assert (trainer.packer.shared_tokens > before) is pack
    trainer.pack = True
    (rows_a, loss_a, metrics_a, grads_a), (rows_b, loss_b, metrics_b, grads_b) = seen[False], seen[True]
    for prefix in ("", "KL_"):
        mask = batch[f"{prefix}completion_mask"][:, 1:].bool()
        torch.testing.assert_close(rows_b[prefix][0][mask], rows_a[prefix][0][mask], atol=1e-4, rtol=0)
        torch.testing.assert_close(rows_b[prefix][0].sum(1), rows_a[prefix][0].sum(1), atol=1e-4, rtol=1e-6)
        torch.testing.assert_close(rows_b[prefix][1][mask], rows_a[prefix][1][mask], atol=1e-4, rtol=0)
        _assert_same_grads(rows_a[prefix][2], rows_b[prefix][2])
    torch.testing.assert_close(loss_b, loss_a, atol=1e-4, rtol=0)
    assert set(metrics_a) == set(metrics_b) and {"kl", "rewards/chosen", "logps/rejected"} <= set(metrics_a)
    for key, value in metrics_a.items():
        if key != "num_tokens":  # a running count over both calls
            assert metrics_b[key] == pytest.approx(value, abs=1e-4), key
    _assert_same_grads(grads_a, grads_b)


def test_kto_reference_precomputation_is_packed_and_equal(kto_trainer):
    trainer = kto_trainer
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.pack = False
    plain = trainer.compute_ref_log_probs(trainer.model, batch)
    trainer.pack = True
    before = trainer.packer.shared_tokens
    packed = trainer.compute_ref_log_probs(trainer.model, batch)
    assert trainer.packer.shared_tokens > before
    for a, b in zip(plain, packed, strict=True):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-6)


@pytest.mark.parametrize("algo", ["simpo", "orpo"])
def test_simpo_and_orpo_log_probs_loss_and_lora_gradients_equal_the_unshared_forward(
        algo, tiny_model, injected_pairs, tmp_path_factory):
    rows = [p.to_trl() for p in _shortest_pairs(injected_pairs, 2)]
    if algo == "simpo":
        from trl.experimental.cpo import CPOConfig

        args = CPOConfig(**_common(tmp_path_factory), per_device_train_batch_size=2, loss_type="simpo",
                         cpo_alpha=0.0)
    else:
        from trl.experimental.orpo import ORPOConfig

        args = ORPOConfig(**_common(tmp_path_factory), per_device_train_batch_size=2)
    trainer = _lora_trainer(shared_prefix_trainer(algo), args, rows, tiny_model)
    model = trainer.model
    batch = next(iter(trainer.get_train_dataloader()))
    seen = {}
    for pack in (False, True):
        trainer.pack = pack
        before = trainer.packer.shared_tokens
        model.zero_grad(set_to_none=True)
        out = trainer.concatenated_forward(model, batch)
        logps = torch.cat([out[0], out[1]])
        (logps * torch.tensor([0.5, 1.5, 1.0, 0.7])).sum().backward()
        logps, logp_grads = logps.detach(), _grads(model)
        model.zero_grad(set_to_none=True)
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        seen[pack] = logps, loss.detach(), logp_grads, _grads(model)
        assert (trainer.packer.shared_tokens > before) is pack
    plan_share = trainer.packer.shared_tokens / trainer.packer.tokens_unshared
    assert plan_share > 0.3  # real pairs: most of each pair's tokens are common
    (logps_a, loss_a, lg_a, g_a), (logps_b, loss_b, lg_b, g_b) = seen[False], seen[True]
    torch.testing.assert_close(logps_b, logps_a, atol=1e-4, rtol=1e-6)
    torch.testing.assert_close(loss_b, loss_a, atol=1e-4, rtol=0)
    _assert_same_grads(lg_a, lg_b)
    _assert_same_grads(g_a, g_b)
