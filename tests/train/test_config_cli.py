"""TrainConfig defaults, YAML + CLI precedence, the CLI's help, and the chosen settings."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from seapo.cli import app
from seapo.errors import InputError
from seapo.train.config import TrainConfig
from seapo.train.settings import GIB, ModelShape, choose_settings


def test_paper_defaults():
    c = TrainConfig()
    assert (c.algo, c.lora, c.lora_r, c.lora_alpha, c.lora_dropout, c.lora_target_modules) == \
           ("kto", True, 8, 16, 0.0, "all-linear")
    assert (c.learning_rate, c.epochs, c.beta, c.lr_scheduler, c.warmup_ratio, c.batch_size) == \
           (5e-6, 3.0, 0.1, "cosine", 0.0, 16)
    assert (c.heldout_fraction, c.dtype, c.trust_remote_code) == (0.1, "auto", False)
    assert all(f.description for f in TrainConfig.model_fields.values())


def test_cli_options_override_the_yaml_file(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("algo: dpo\nlearning_rate: 1.0e-5\nlora: false\nepochs: 2\n")
    c = TrainConfig.from_sources(path, learning_rate=3e-6, epochs=None)
    assert (c.algo, c.learning_rate, c.lora, c.epochs) == ("dpo", 3e-6, False, 2.0)
    path.write_text("algo: dpo\nleraning_rate: 1\n")
    with pytest.raises(InputError, match="leraning_rate"):
        TrainConfig.from_sources(path)
    path.write_text("algo: sft\n")
    with pytest.raises(InputError) as err:
        TrainConfig.from_sources(path)
    assert err.value.field == "algo" and str(path) in str(err.value)


def test_cli_help_lists_every_field_and_bad_input_fails_cleanly(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--help"], terminal_width=200, env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in TrainConfig.model_fields:
        assert name.replace("_", "-") in result.output or name == "output_dir"
    assert "--out" in result.output and "--config" in result.output
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"prompt": [{"role": "user", "content": "hi"}], "chosen": "a"}\n')
    result = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "rejected" in result.output and "1" in result.output


def _shape(params: float, layers: int, hidden: int) -> ModelShape:
    return ModelShape(int(params), layers, hidden, max(1, hidden // 64), 49152)


def test_settings_follow_memory_and_hardware():
    small = choose_settings(TrainConfig(max_length=512), _shape(135e6, 30, 576), "cpu", 1, free_bytes=16 * GIB)
    assert not small.gradient_checkpointing and small.per_device_batch_size == 2  # kto: 2 rows for its KL
    assert small.per_device_batch_size * small.gradient_accumulation_steps == 16
    dpo = choose_settings(TrainConfig(algo="dpo"), _shape(135e6, 30, 576), "cpu", 1, free_bytes=16 * GIB)
    assert (dpo.per_device_batch_size, dpo.gradient_accumulation_steps) == (1, 16)
    gpu = choose_settings(TrainConfig(algo="dpo", max_length=512), _shape(135e6, 30, 576), "cuda", 1,
                          free_bytes=80 * GIB)
    assert gpu.per_device_batch_size == 16 and not gpu.gradient_checkpointing
    big = choose_settings(TrainConfig(max_length=4096), _shape(7e9, 32, 4096), "cpu", 1, free_bytes=40 * GIB)
    assert big.gradient_checkpointing  # activations of a 7B model at 4k tokens do not fit in 20 GiB
    two = choose_settings(TrainConfig(), _shape(135e6, 30, 576), "cpu", 2, free_bytes=16 * GIB)
    assert two.effective_batch_size == 16 and two.world_size == 2
    forced = choose_settings(TrainConfig(gradient_checkpointing=True, per_device_batch_size=2, dtype="fp32"),
                             _shape(135e6, 30, 576), "cpu", 1, free_bytes=16 * GIB)
    assert forced.gradient_checkpointing and forced.per_device_batch_size == 2 and forced.mixed_precision == "no"
    assert forced.gradient_accumulation_steps == 8
