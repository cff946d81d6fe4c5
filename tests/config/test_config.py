"""One config layer: the same clear error for a bad value from Python, YAML and the CLI; every
field documented; every CLI generated from its config; one exit-code convention."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from seapo.cli import app
from seapo.config.cli import build_flags
from seapo.errors import ConfigError, InputError
from seapo.inject.pipeline import InjectConfig
from seapo.pipeline.config import RunConfig


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "240"})


def _config_classes(model: type[BaseModel], seen: set | None = None):
    seen = set() if seen is None else seen
    if model in seen:
        return seen
    seen.add(model)
    for field in model.model_fields.values():
        default = field.get_default(call_default_factory=True)
        candidates = [type(default), field.annotation, *getattr(field.annotation, "__args__", ())]
        for cls in candidates:
            if isinstance(cls, type) and issubclass(cls, BaseModel):
                _config_classes(cls, seen)
    return seen


def test_every_setting_of_every_stage_is_documented():
    from seapo.backends.transformers_backend import TransformersBackendConfig
    from seapo.evaluate.runner import EvalConfig

    classes = _config_classes(RunConfig) | _config_classes(EvalConfig) | {TransformersBackendConfig}
    names = {c.__name__ for c in classes}
    assert {"PrepareConfig", "InjectConfig", "LLMInjectorConfig", "RulesInjectorConfig", "VerifierConfig",
            "TransformersBackendConfig", "TrainConfig", "EvalConfig", "RunConfig"} <= names
    for cls in classes:
        missing = [n for n, f in cls.model_fields.items() if not (f.description or "").strip()]
        assert not missing, f"{cls.__name__}: undocumented {missing}"


def test_a_bad_value_gets_the_same_error_from_python_yaml_and_cli(tmp_path, shared_data):
    with pytest.raises(ConfigError) as python:
        InjectConfig(max_attempts=0)
    assert python.value.field == "max_attempts" and "greater than or equal to 1" in str(python.value)

    path = tmp_path / "inject.yaml"
    path.write_text("strategy: all\nllm:\n  backend:\n    model: embedded\n    batch_size: 0\n")
    with pytest.raises(ConfigError) as yaml_error:
        InjectConfig.load(path)
    assert (yaml_error.value.path, yaml_error.value.line, yaml_error.value.field) == \
        (str(path), 5, "llm.backend.batch_size")

    records = shared_data / "preference" / "dpo_en_demo.json"
    prepared = tmp_path / "records.jsonl"
    assert _invoke("prepare", str(records), "--out", str(prepared)).exit_code == 0
    result = _invoke("inject", str(prepared), "--out", str(tmp_path / "run"), "--max-attempts", "0",
                     "--fallback", "none")
    assert result.exit_code == 2, result.output
    assert "max_attempts" in result.output and "--max-attempts" in result.output
    assert "Traceback" not in result.output and "IndexError" not in result.output
    result = _invoke("inject", str(prepared), "--out", str(tmp_path / "run"), "--config", str(path))
    assert result.exit_code == 2 and f"{path}:5" in result.output and "llm.backend.batch_size" in result.output


def test_unknown_settings_name_the_known_ones():
    with pytest.raises(ConfigError, match="unknown setting; known: .*min_difference") as err:
        InjectConfig(verifier={"min_diference": 0.1})
    assert err.value.field == "verifier.min_diference"
    known = "all, (logic-first, )?mixed, profile, single, (test-logic-only, )?top"  # other tests may register these
    with pytest.raises(InputError, match=f"unknown strategy 'sometimes'; known: {known}"):
        InjectConfig(strategy="sometimes")
    with pytest.raises(ConfigError, match="exactly one error type"):
        InjectConfig(strategy="single")
    config = InjectConfig()
    with pytest.raises(ConfigError, match="max_attempts"):
        config.max_attempts = -1  # assignments are validated too


def test_every_cli_is_generated_from_its_config():
    """Each leaf setting of a stage's config is an option of its command, with its description."""
    from seapo.data.prepare import PrepareConfig
    from seapo.inject.cli import ALIASES as INJECT_ALIASES
    from seapo.train.config import TrainConfig

    for command, config_cls, positional, aliases in (("inject", InjectConfig, (), INJECT_ALIASES),
                                                     ("prepare", PrepareConfig, ("source",), {}),
                                                     ("train", TrainConfig, (), {})):
        result = _invoke(command, "--help")
        assert result.exit_code == 0
        flags = build_flags(config_cls, positional=positional, aliases=aliases)
        assert flags
        for flag in flags:
            assert flag.decls[0].split("/")[0] in result.output, (command, flag.path)


def test_set_reaches_any_setting_and_is_validated(tmp_path, shared_data):
    result = _invoke("config", "show", "--set", "inject.llm.max_new_tokens=77", "--set", "inject.rules.seed=3")
    assert result.exit_code == 0, result.output
    import yaml

    shown = yaml.safe_load(result.output)
    assert shown["inject"]["llm"]["max_new_tokens"] == 77 and shown["inject"]["rules"]["seed"] == 3
    bad = _invoke("config", "show", "--set", "inject.llm.max_new_tokens=0")
    assert bad.exit_code == 2 and "inject.llm.max_new_tokens" in bad.output
    assert _invoke("config", "show", "--set", "nokey").exit_code == 2


def test_exit_codes_bad_input_2_no_usable_output_1(tmp_path):
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n")
    assert _invoke("prepare", str(junk), "--out", str(tmp_path / "o.jsonl")).exit_code == 1  # nothing usable
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert _invoke("prepare", str(notes), "--out", str(tmp_path / "o.jsonl")).exit_code == 2  # bad input
    assert _invoke("prepare", str(notes), "--out", str(tmp_path / "o.jsonl"), "--limit", "0").exit_code == 2
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"id": "r1", "prompt": [{"role": "user", "content": "Say hi."}],
                                   "response": "", "source": {}}) + "\n")
    result = _invoke("inject", str(records), "--out", str(tmp_path / "run"), "--injector", "rules")
    assert result.exit_code in (1, 2) and "Traceback" not in result.output


def test_dtype_settings_take_torch_names_too():
    """One dtype table (seapo.models.loading): 'bfloat16' means bf16 wherever a dtype is set."""
    from seapo.backends.transformers_backend import TransformersBackendConfig
    from seapo.train.config import TrainConfig

    assert TrainConfig(dtype="bfloat16").dtype == "bf16"
    assert TransformersBackendConfig(dtype="float32").dtype == "fp32"
    with pytest.raises(ConfigError, match="fp8"):
        TransformersBackendConfig(dtype="fp8")
