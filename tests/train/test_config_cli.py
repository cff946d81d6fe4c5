"""TrainConfig defaults, YAML + CLI precedence, the CLI's help and errors, the chosen settings and
the TRL arguments built from them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from seapo.cli import app
from seapo.errors import ConfigError, InputError
from seapo.train.config import TrainConfig
from seapo.train.settings import GIB, ModelShape, choose_settings
from seapo.train.trainer import trl_arguments


@pytest.fixture
def seapo_cli():
    """``seapo_cli(*args)``: run the ``seapo`` CLI in a wide terminal (one error line stays one line)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), terminal_width=200, env={"COLUMNS": "200"})

    return invoke


def _shape(params: float, layers: int, hidden: int) -> ModelShape:
    return ModelShape(int(params), layers, hidden, max(1, hidden // 64), 49152)


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
    c = TrainConfig.load(path, {"learning_rate": 3e-6})
    assert (c.algo, c.learning_rate, c.lora, c.epochs) == ("dpo", 3e-6, False, 2.0)
    path.write_text("algo: dpo\nleraning_rate: 1\n")
    with pytest.raises(InputError, match="leraning_rate"):
        TrainConfig.load(path)
    path.write_text("algo: sft\n")
    with pytest.raises(InputError) as err:
        TrainConfig.load(path)
    assert err.value.field == "algo" and str(path) in str(err.value)


def test_a_bad_value_names_its_field_from_python_yaml_and_the_cli(tmp_path, seapo_cli):
    with pytest.raises(ConfigError) as err:
        TrainConfig(lora_r=0)
    assert err.value.field == "lora_r" and isinstance(err.value, ValueError)
    path = tmp_path / "train.yaml"
    path.write_text("algo: dpo\n\nlora_r: 0\n")
    with pytest.raises(ConfigError) as err:
        TrainConfig.load(path)
    assert (err.value.field, err.value.path, err.value.line) == ("lora_r", str(path), 3)
    assert f"{path}:3:" in str(err.value)
    result = seapo_cli("train", "pairs.jsonl", "--lora-r", "0")
    assert result.exit_code == 2
    assert "lora_r" in result.output and "--lora-r" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    # A cross-field rule names the field to change too: KTO's KL estimate needs two examples per micro-batch.
    with pytest.raises(ConfigError) as err:
        TrainConfig(per_device_batch_size=1)
    assert err.value.field == "per_device_batch_size"
    assert TrainConfig(algo="dpo", per_device_batch_size=1).per_device_batch_size == 1
    result = seapo_cli("train", "pairs.jsonl", "--per-device-batch-size", "1")
    assert result.exit_code == 2 and "--per-device-batch-size" in result.output


def test_cli_help_lists_every_field_and_bad_input_fails_cleanly(tmp_path, seapo_cli):
    result = seapo_cli("train", "--help")
    assert result.exit_code == 0
    for name in TrainConfig.model_fields:
        assert name.replace("_", "-") in result.output or name == "output_dir"
    assert "--out" in result.output and "--config" in result.output
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"prompt": [{"role": "user", "content": "hi"}], "chosen": "a"}\n')
    result = seapo_cli("train", str(bad), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "rejected" in result.output and "1" in result.output


def test_settings_follow_memory_and_hardware():
    small = choose_settings(TrainConfig(max_length=512), _shape(135e6, 30, 576), "cpu", 1, free_bytes=16 * GIB)
    # kto: 4 rows = 2 pairs with the shared prefix (a pair's rows in one micro-batch), else 2 rows for its KL
    assert not small.gradient_checkpointing and small.per_device_batch_size == 4
    assert small.per_device_batch_size * small.gradient_accumulation_steps == 16
    plain = choose_settings(TrainConfig(max_length=512, shared_prefix=False), _shape(135e6, 30, 576), "cpu", 1,
                            free_bytes=16 * GIB)
    assert (plain.per_device_batch_size, plain.gradient_accumulation_steps) == (2, 8)
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
    with pytest.raises(ConfigError) as err:  # known only once the device is: a config error all the same
        choose_settings(TrainConfig(dtype="fp16"), _shape(135e6, 30, 576), "cpu", 1, free_bytes=16 * GIB)
    assert err.value.field == "dtype"


def test_model_shape_estimates_the_parameter_count_from_the_config(tiny_model):
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = ModelShape.from_config(AutoConfig.from_pretrained(tiny_model))
    real = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model).parameters())
    assert (shape.layers, shape.hidden, shape.heads) == (2, 64, 4)
    assert 0.8 < shape.params / real < 1.25  # the estimate ignores norms and grouped-query K/V


@pytest.mark.parametrize("algo", ["kto", "dpo", "ipo", "simpo", "orpo"])
def test_trl_arguments_carry_the_settings_and_warmup_is_a_ratio(algo, tmp_path):
    cfg = TrainConfig(algo=algo, warmup_ratio=0.25, dtype="fp32", save_steps=3, seed=7,
                      gradient_checkpointing=algo == "dpo")
    st = choose_settings(cfg, _shape(135e6, 30, 576), "cpu", 1, free_bytes=16 * GIB)
    args, trainer_cls = trl_arguments(cfg, st, tmp_path / "checkpoints")
    # Every algorithm gets the shared-prefix forward (a subclass of its TRL trainer) by default.
    base = {"kto": "KTOTrainer", "dpo": "DPOTrainer", "ipo": "DPOTrainer", "simpo": "CPOTrainer",
            "orpo": "ORPOTrainer"}[algo]
    assert trainer_cls.__name__ == f"SharedPrefix{base}" and trainer_cls.trl_base.__name__ == base
    assert issubclass(trainer_cls, trainer_cls.trl_base)
    plain = trl_arguments(cfg.model_copy(update={"shared_prefix": False}), st, tmp_path / "checkpoints")[1]
    assert plain is trainer_cls.trl_base
    # The scheduler's warm-up: a quarter of the steps (transformers reads warmup_steps < 1 as a ratio).
    assert (args.get_warmup_steps(8), args.get_warmup_steps(100)) == (2, 25)
    assert args.train_sampling_strategy == "sequential"  # the rows are already in training order
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == \
           (st.per_device_batch_size, st.gradient_accumulation_steps)
    assert (args.save_strategy, args.save_steps, args.seed, args.beta) == ("steps", 3, 7, 0.1)
    # TRL's configs default to checkpointing on: the chosen value must win in both directions.
    assert args.gradient_checkpointing is (algo == "dpo") is st.gradient_checkpointing
    if algo in ("kto", "dpo", "ipo"):
        assert args.precompute_ref_log_probs and args.precompute_ref_batch_size == st.per_device_batch_size
