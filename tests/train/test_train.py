"""Real training runs of the tiny model through TRL's trainers on real injected pairs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import seapo.train
from seapo.io import read_jsonl
from seapo.train.config import TrainConfig
from seapo.train.trainer import train


@pytest.mark.parametrize("algo", ["kto", "dpo", "ipo", "simpo", "orpo"])
def test_each_algorithm_lowers_the_loss_on_a_repeated_batch(algo, pairs_subset, tiny_config):
    # 4 pairs = one batch (8 KTO rows), seen again every step; a high lr so a few steps show it.
    cfg = tiny_config(algo=algo, epochs=3, learning_rate=5e-3, lr_scheduler="constant",
                      batch_size=8 if algo == "kto" else 4, per_device_batch_size=4,
                      save_steps=1000)  # no checkpoint in a 3-step run
    result = train(pairs_subset(4), cfg)
    losses = [r["loss"] for r in read_jsonl(result.log_path) if "loss" in r]
    assert result.global_step == 3 and len(losses) == 3
    assert losses[-1] < losses[0] - 1e-3, losses
    assert all(torch.isfinite(torch.tensor(losses)))
    rows = read_jsonl(result.log_path)
    assert {"step", "epoch", "loss", "learning_rate"} <= set(rows[0])
    assert "rewards/margins" in rows[-1]  # every trainer reports reward margins
    if algo != "kto":
        assert "rewards/accuracies" in rows[-1]
    assert result.settings["precompute_ref_log_probs"] == (algo in ("kto", "dpo", "ipo"))
    assert (Path(result.output_dir) / "adapter" / "adapter_config.json").is_file()


@pytest.fixture(scope="module")
def kto_run(tiny_model, demo_negatives, tmp_path_factory):
    out = tmp_path_factory.mktemp("kto-run")
    cfg = TrainConfig(model=str(tiny_model), output_dir=str(out), epochs=1, learning_rate=2e-3, batch_size=4,
                      per_device_batch_size=2, max_length=256, heldout_fraction=0.25)
    return train(demo_negatives, cfg)


def test_default_run_writes_adapter_merged_log_plot_and_heldout(kto_run):
    r = kto_run
    # 3 held-out records x all 3 error types; of the 9 training pairs one differs only past max_length=256
    assert r.train_pairs == 8 and r.heldout_pairs == 9
    assert r.global_step == 4  # 8 pairs -> 16 KTO rows / batch 4
    assert open(r.plot_path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    held = json.loads(open(r.heldout_path).read())
    for side in ("before", "after"):
        assert held[side]["overall"]["n"] == 9
        assert {t: v["n"] for t, v in held[side]["per_error_type"].items()} == \
               {"correctness": 3, "logic": 3, "hallucination": 3}
    before, after = held["before"]["overall"], held["after"]["overall"]
    assert after["divergent_span"]["mean_margin"] != before["divergent_span"]["mean_margin"]
    # The implicit reward exists after training only (the untrained model is its reference) and
    # its per-pair margins are the log-ratio against the before measurement.
    assert before["implicit_reward"] is None and after["implicit_reward"]["n"] == 9
    for b, a in zip(held["before"]["details"], held["after"]["details"], strict=True):
        expected = (a["chosen_logp"] - b["chosen_logp"]) - (a["rejected_logp"] - b["rejected_logp"])
        assert a["implicit_reward_margin"] == pytest.approx(expected, abs=1e-6)
    # A pair whose edit lies past max_length=256 on both sides has no divergent span: left out, counted.
    span_n = after["divergent_span"]["n"]
    assert 0 < span_n <= 9 and span_n == sum(d["divergent_span_margin"] is not None for d in held["after"]["details"])
    assert "details" not in r.heldout_after and r.heldout_after["overall"]["change"]["divergent_span"]["n"] == span_n
    settings = json.loads(open(os.path.join(r.output_dir, "settings.json")).read())
    assert settings["chosen"]["reasons"] and settings["heldout_records"] == 3
    assert settings["dropped_edit_past_max_length_pairs"] == {"train": 1, "heldout": 0}
    assert [row["step"] for row in read_jsonl(r.log_path)] == [1, 2, 3, 4]


def test_merged_model_loads_with_plain_transformers_and_equals_base_plus_adapter(kto_run, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(kto_run.merged_dir)
    merged = AutoModelForCausalLM.from_pretrained(kto_run.merged_dir).eval()
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    out = merged.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    reference = PeftModel.from_pretrained(base, kto_run.adapter_dir).eval()
    with torch.no_grad():
        a = merged(**ids).logits
        b = reference(**ids).logits
        plain = AutoModelForCausalLM.from_pretrained(tiny_model).eval()(**ids).logits
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(a, plain)  # training changed the weights


def test_mixed_vs_all_pairing_in_training(demo_negatives, tiny_config):
    # max_length 1024: every edit within it, so no pair is dropped for differing only past the cut
    common = dict(algo="simpo", max_steps=1, batch_size=2, per_device_batch_size=2, heldout_fraction=0.25,
                  max_length=1024)
    mixed = train(demo_negatives, tiny_config("m", pairing="mixed", **common))
    every = train(demo_negatives, tiny_config("a", pairing="all", **common))
    assert (mixed.train_pairs, every.train_pairs) == (9, 27)
    assert mixed.heldout_pairs == every.heldout_pairs == 9  # the same records are held out


def test_resume_continues_from_the_last_checkpoint_to_the_same_final_step(pairs_subset, tiny_config):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):  # an interruption right after the step-2 checkpoint
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                control.should_training_stop = True

    pairs = pairs_subset(8)
    common = dict(algo="dpo", epochs=1, batch_size=2, per_device_batch_size=2, learning_rate=1e-3, save_steps=2)
    full = train(pairs, tiny_config("full", **common))
    first = train(pairs, tiny_config("resumed", **common), callbacks=[StopAt()])
    out = first.output_dir
    assert first.global_step == 2 and os.path.isdir(os.path.join(out, "checkpoints", "checkpoint-2"))
    second = train(pairs, tiny_config("resumed", resume=True, **common))
    assert second.resumed_from.endswith("checkpoint-2")
    assert second.global_step == full.global_step == 4
    log = read_jsonl(second.log_path)
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    full_log = read_jsonl(full.log_path)
    for a, b in zip(log, full_log, strict=True):  # the resumed run learns what the uninterrupted one did
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-4)


def reference_caches(folder):
    """The reference log-prob caches TRL wrote under ``folder`` (arrow files of a ``ref_logps`` column)."""
    from datasets import Dataset

    return [p for p in folder.rglob("cache-*.arrow") if "ref_logps" in Dataset.from_file(str(p)).column_names]


def test_max_steps_reads_only_the_rows_it_trains_and_runs_of_those_rows_share_one_reference_pass(
        pairs_subset, tiny_config, tmp_path):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                control.should_training_stop = True

    pairs, cache = pairs_subset(8), tmp_path / "cache"  # 8 pairs: 16 KTO rows, 4 updates of 4 rows
    common = dict(algo="kto", batch_size=4, per_device_batch_size=4, lr_scheduler="constant", learning_rate=1e-3,
                  max_length=1024)  # every edit within it: no pair dropped
    whole = train(pairs, tiny_config("whole", epochs=1, **common), callbacks=[StopAt()])
    cut = train(pairs, tiny_config("cut", max_steps=2, data_cache_dir=str(cache), **common))
    assert (whole.train_examples, cut.train_examples) == (16, 8)  # the 8 rows two updates read, no more
    assert whole.global_step == cut.global_step == 2
    for a, b in zip(read_jsonl(whole.log_path), read_jsonl(cut.log_path), strict=True):  # the same training
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
    assert not (tmp_path / "cut" / "data").exists()
    assert len(reference_caches(cache)) == 1
    other = train(pairs, tiny_config("other-lr", max_steps=2, data_cache_dir=str(cache), **{**common,
                                                                                            "learning_rate": 1e-2}))
    assert len(reference_caches(cache)) == 1  # the reference pass over those rows was reused, not redone
    assert read_jsonl(other.log_path)[0]["loss"] == pytest.approx(read_jsonl(cut.log_path)[0]["loss"], rel=1e-4)


def test_runs_sharing_a_data_cache_score_the_untrained_model_on_the_heldout_pairs_once(
        demo_negatives, pairs_subset, tiny_config, tmp_path):
    held, cache = pairs_subset(3), tmp_path / "cache"
    common = dict(algo="kto", max_steps=1, batch_size=4, per_device_batch_size=4, heldout_pairs=[str(held)],
                  data_cache_dir=str(cache))
    first = train(demo_negatives, tiny_config("first", **common))
    [stored] = cache.glob("heldout-before-*.json")
    before = json.loads(stored.read_text())
    assert before == json.loads(Path(first.heldout_path).read_text())["before"] and before["overall"]["n"] == 3
    stored.write_text(json.dumps({**before, "marker": "read from the cache"}))
    second = train(demo_negatives, tiny_config("second", **{**common, "learning_rate": 1e-2}))
    assert json.loads(Path(second.heldout_path).read_text())["before"]["marker"] == "read from the cache"
    third = train(demo_negatives, tiny_config("third", **{**common, "max_length": 128}))  # other scoring: measured
    assert "marker" not in json.loads(Path(third.heldout_path).read_text())["before"]
    assert len(list(cache.glob("heldout-before-*.json"))) == 2


@pytest.mark.slow
def test_two_cpu_processes_through_accelerate_launch(tiny_model, demo_negatives, tmp_path):
    out = tmp_path / "mp"
    config = Path(seapo.train.__file__).parent / "configs" / "cpu_2proc.yaml"
    # The real launcher (torchrun underneath; gloo between the two CPU processes).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
           "-m", "seapo.train", str(demo_negatives), "--model", str(tiny_model), "--out", str(out),
           "--epochs", "1", "--batch-size", "8", "--per-device-batch-size", "2", "--max-length", "256",
           "--heldout-fraction", "0.25", "--learning-rate", "2e-3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["settings"]["world_size"] == 2
    assert result["settings"]["effective_batch_size"] == 8  # 2 per device x 2 accumulation x 2 processes
    # 9 pairs less the one whose edit lies past max_length 256: 16 KTO rows / 8 per step
    assert result["global_step"] == 2
    assert [r["step"] for r in read_jsonl(out / "train_log.jsonl")] == [1, 2]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "heldout.json").read_text())["after"]["overall"]["n"] == 9
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out / "merged")


def test_the_shipped_launch_configs_parse_as_accelerate_configs():
    from accelerate.commands.config.config_args import load_config_from_file

    folder = Path(seapo.train.__file__).parent / "configs"
    kinds = {f.stem: load_config_from_file(str(f)) for f in folder.glob("*.yaml")}
    assert set(kinds) == {"cpu_2proc", "multi_gpu", "multi_node", "zero2", "zero3", "zero3_multi_node"}
    for name in ("zero2", "zero3", "zero3_multi_node"):
        assert kinds[name].distributed_type == "DEEPSPEED"
        assert kinds[name].deepspeed_config["deepspeed_multinode_launcher"] == "standard"
    assert kinds["zero2"].deepspeed_config["zero_stage"] == 2 and kinds["zero3"].deepspeed_config["zero_stage"] == 3
    assert kinds["multi_node"].num_machines == kinds["zero3_multi_node"].num_machines == 2


@pytest.mark.slow
def test_two_machines_through_the_multi_node_config(tiny_model, demo_negatives, tmp_path):
    """multi_node.yaml as two nodes would run it, here both on loopback: one process per "machine", ranks 0
    and 1 started separately, meeting at the main node's address (gloo between CPU processes)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "nodes"
    config = Path(seapo.train.__file__).parent / "configs" / "multi_node.yaml"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_machines", "2",
         "--num_processes", "2", "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1",
         "--main_process_port", str(port), "-m", "seapo.train", str(demo_negatives), "--model", str(tiny_model),
         "--out", str(out), "--epochs", "1", "--batch-size", "8", "--per-device-batch-size", "2", "--max-length",
         "256", "--heldout-fraction", "0.25", "--no-merge"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["settings"]["world_size"] == 2 and result["settings"]["effective_batch_size"] == 8
    # 16 KTO rows (one pair's edit lies past max_length 256) / 8 per step
    assert result["global_step"] == 2 and (out / "adapter" / "adapter_model.safetensors").is_file()


def test_training_runs_without_cudnn_attention_and_restores_it(pairs_subset, tiny_config):
    """Shared-prefix masks and length-grouped batches change shape every step: on a GPU cuDNN's attention
    would build a graph for each (docs/gpu.md)."""
    from transformers import TrainerCallback

    seen = []

    class Record(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            seen.append(torch.backends.cuda.cudnn_sdp_enabled())

    train(pairs_subset(4), tiny_config("cudnn", algo="dpo", max_steps=1, batch_size=2, per_device_batch_size=2),
          callbacks=[Record()])
    assert seen == [False]
    assert torch.backends.cuda.cudnn_sdp_enabled()
